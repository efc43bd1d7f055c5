/** Small helpers the operator modules' C emitters share. */
import type { ProgramNode } from '../fixedpoint/program.js';

export const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** `Y[i] = f(X[i])` over a whole tensor. */
export function elementwise(node: ProgramNode, x: string, y: string, expr: (v: string) => string): string {
  return `    int i;\n    for (i = 0; i < ${numel(node.outShape)}; i++) ${y}[i] = ${expr(`${x}[i]`)};`;
}

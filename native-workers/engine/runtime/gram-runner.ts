/**
 * A B^T of two row-major float32 matrices (ra x k and rb x k) in onnxruntime (one Gemm, multi-threaded
 * MLAS): the Gram matrices of optimized rounding (H = X X^T, C = X_fp X_q^T) and the products of the float target's W C H^-1, which in plain
 * TypeScript cost seconds per layer. float32 products summed by MLAS: relative errors near 1e-6,
 * far below the damping GPTQ adds to H.
 */
import * as ort from 'onnxruntime-node';
import { writeOnnx } from '../onnx/onnx-format.js';
import { DataType, type Graph } from '../ir/graph.js';
import { sessionOptions } from './session-options.js';

export class GramRunner {
  private constructor(private readonly session: ort.InferenceSession) {}

  static async create(options: { threads?: number } = {}): Promise<GramRunner> {
    const g: Graph = {
      name: 'gram',
      opset: 13,
      irVersion: 7,
      producer: 'fxpq',
      inputs: [
        { name: 'a', dataType: DataType.FLOAT, shape: [-1, -1], dimParams: ['ra', 'k'] },
        { name: 'b', dataType: DataType.FLOAT, shape: [-1, -1], dimParams: ['rb', 'k'] },
      ],
      outputs: [{ name: 'g', dataType: DataType.FLOAT, shape: [-1, -1], dimParams: ['ra', 'rb'] }],
      nodes: [
        { name: 'gemm', op: 'Gemm', inputs: ['a', 'b'], outputs: ['g'], attrs: { transB: { kind: 'int', value: 1 } } },
      ],
      initializers: new Map(),
      metadata: {},
    };
    return new GramRunner(await ort.InferenceSession.create(writeOnnx(g), sessionOptions(options)));
  }

  /** A B^T for row-major A (ra x k) and B (rb x k). */
  async gemm(a: Float32Array, b: Float32Array, ra: number, rb: number, k: number): Promise<Float32Array> {
    const r = await this.session.run({
      a: new ort.Tensor('float32', a, [ra, k]),
      b: new ort.Tensor('float32', b, [rb, k]),
    });
    return r['g']!.data as Float32Array;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

// The few WebAssembly globals the kernels loader uses. The project compiles with lib ES2023
// and @types/node 20, neither of which declares them (lib.dom does, for the renderer only).
declare namespace WebAssembly {
  class Module {}
  class Instance {
    readonly exports: Record<string, unknown>;
  }
  class Memory {
    readonly buffer: ArrayBuffer;
    grow(pages: number): number;
  }
  class Global {
    value: unknown;
  }
  function compile(bytes: Uint8Array): Promise<Module>;
  function instantiate(module: Module, imports?: Record<string, unknown>): Promise<Instance>;
}

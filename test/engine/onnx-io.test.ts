import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { create, toBinary } from '@bufbuild/protobuf';
import {
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  TensorProto_DataLocation,
  TensorProtoSchema,
} from 'onnx-buf';
import { readOnnx, writeOnnx } from '../../native-workers/engine/onnx/onnx-format.js';
import { DataType, tensorToNumbers } from '../../native-workers/engine/ir/graph.js';
import { FxpqError } from '../../native-workers/engine/errors.js';
import { modelPath } from '../helpers/fixtures.js';

function modelWith(tensor: ReturnType<typeof create<typeof TensorProtoSchema>>, opset = 13): Uint8Array {
  return toBinary(
    ModelProtoSchema,
    create(ModelProtoSchema, {
      irVersion: 7n,
      opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opset) })],
      graph: create(GraphProtoSchema, {
        name: 'g',
        node: [create(NodeProtoSchema, { opType: 'Identity', input: [tensor.name], output: ['y'], name: 'id' })],
        initializer: [tensor],
      }),
    }),
  );
}

describe('ONNX reading', () => {
  it('reads typed fields (float_data, int64_data, int32_data)', () => {
    const f = readOnnx(
      modelWith(
        create(TensorProtoSchema, { name: 'f', dataType: DataType.FLOAT, dims: [2n, 2n], floatData: [1, -2, 3.5, 0] }),
      ),
      'typed.onnx',
    );
    expect(Array.from(f.initializers.get('f')!.data as Float32Array)).toEqual([1, -2, 3.5, 0]);
    const i = readOnnx(
      modelWith(
        create(TensorProtoSchema, { name: 'i', dataType: DataType.INT64, dims: [3n], int64Data: [1n, -1n, 7n] }),
      ),
      'typed.onnx',
    );
    expect(tensorToNumbers(i.initializers.get('i')!)).toEqual([1, -1, 7]);
    const b = readOnnx(
      modelWith(create(TensorProtoSchema, { name: 'b', dataType: DataType.INT8, dims: [2n], int32Data: [-128, 127] })),
      'typed.onnx',
    );
    expect(Array.from(b.initializers.get('b')!.data as Int8Array)).toEqual([-128, 127]);
  });

  it('reads raw_data little-endian into aligned typed arrays', () => {
    const raw = new Uint8Array(new Float32Array([0.5, -1.25, 8]).buffer);
    const g = readOnnx(
      modelWith(create(TensorProtoSchema, { name: 'r', dataType: DataType.FLOAT, dims: [3n], rawData: raw })),
      'raw.onnx',
    );
    expect(Array.from(g.initializers.get('r')!.data as Float32Array)).toEqual([0.5, -1.25, 8]);
  });

  it('refuses external-data models with a sentence naming the file and tensor', () => {
    const t = create(TensorProtoSchema, {
      name: 'big',
      dataType: DataType.FLOAT,
      dims: [4n],
      dataLocation: TensorProto_DataLocation.EXTERNAL,
      externalData: [create(StringStringEntryProtoSchema, { key: 'location', value: 'weights.bin' })],
    });
    expect(() => readOnnx(modelWith(t), 'ext.onnx')).toThrowError(/ext\.onnx stores tensor big as external data/);
  });

  it('refuses opsets outside 7..21 and names them', () => {
    const t = create(TensorProtoSchema, { name: 'f', dataType: DataType.FLOAT, dims: [1n], floatData: [1] });
    expect(() => readOnnx(modelWith(t, 6), 'old.onnx')).toThrowError(
      /old\.onnx uses ONNX opset 6; FxPQ reads opsets 7 to 21/,
    );
    expect(() => readOnnx(modelWith(t, 22), 'new.onnx')).toThrowError(/opset 22/);
  });

  it('detects a tensor whose data does not match its shape', () => {
    const t = create(TensorProtoSchema, { name: 'bad', dataType: DataType.FLOAT, dims: [3n], floatData: [1] });
    expect(() => readOnnx(modelWith(t), 'bad.onnx')).toThrowError(/tensor bad should hold 3 values/);
  });

  it('reads opset 8 (mnist-8) with its fixed batch and writes it back losslessly', () => {
    const path = modelPath('mnist-8')!;
    const g = readOnnx(readFileSync(path), path);
    expect(g.opset).toBe(8);
    expect(g.inputs[0]!.shape).toEqual([1, 1, 28, 28]);
    const again = readOnnx(writeOnnx(g), 'rewritten');
    expect(again.nodes.map((n) => n.op)).toEqual(g.nodes.map((n) => n.op));
    for (const [name, t] of g.initializers) {
      expect(Array.from(again.initializers.get(name)!.data as ArrayLike<number>)).toEqual(
        Array.from(t.data as ArrayLike<number>),
      );
    }
  });

  it('reads a dynamic batch as a symbolic dimension', () => {
    const path = modelPath('fmnist_resnet20')!;
    const g = readOnnx(readFileSync(path), path);
    expect(g.inputs[0]!.shape).toEqual([-1, 1, 28, 28]);
    expect(g.inputs[0]!.dimParams![0]).toBe('N');
  });

  it('throws FxpqError (never a raw protobuf error) for garbage', () => {
    const garbage = new TextEncoder().encode('this is a text file, not a model\n');
    expect(() => readOnnx(garbage, 'notes.onnx')).toThrow(FxpqError);
    expect(() => readOnnx(new Uint8Array(0), 'empty.onnx')).toThrowError(/empty\.onnx is empty/);
  });
});

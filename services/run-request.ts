/**
 * The one schema of a run's request (what `startRun` accepts, what project.json records): the
 * API refuses exactly what the project file would later refuse on reading.
 */
import { z } from 'zod';

const id = z.string().min(1).max(200);
const count = z.number().int().min(1).max(10_000_000).optional();

const fields = {
  model: id,
  dataset: id,
  name: z.string().max(200).optional(),
  budget: z.number().min(0).max(100).optional(),
  uniform: z.number().int().min(2).max(16).optional(),
  weightBits: z.number().int().min(2).max(16).optional(),
  rounding: z.enum(['nearest', 'optimized']).optional(),
  strategy: z.enum(['schedule', 'sensitivity', 'tradeoff']).optional(),
  calib: count,
  eval: count,
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31)
    .optional(),
  slice: count,
  z: z.number().min(0).max(10).optional(),
  finalZ: z.number().min(0).max(10).optional(),
  distill: z.boolean().optional(),
  biasCorrection: z.boolean().optional(),
  fracChoice: z.boolean().optional(),
  equalize: z.enum(['depthwise', 'all', 'off']).optional(),
};

/** A request from a front end: no field beside these. */
export const RunRequestSchema = z.object(fields).strict();

/** A request as project.json keeps it: the same fields, others (a later version's) kept. */
export const StoredRunRequestSchema = z.looseObject(fields);

/**
 * A run is imported again (evaluate --run, export, a resumed search, the app's histograms) with
 * the equalization it was made with: its mode and per-channel scale limit, and the limit of 16 for
 * runs that recorded none (made before the limit became 2).
 */
import { describe, expect, it } from 'vitest';
import { LEGACY_MAX_SCALE, MAX_SCALE } from '../../native-workers/engine/passes/equalize.js';
import { runEqualized, type RunConfig } from '../../services/runs.js';
import { openSession } from '../../services/session.js';

const config = (extra: Partial<RunConfig>): RunConfig => ({ assignment: {}, ...extra }) as RunConfig;

describe("a run's equalization", () => {
  it('is the recorded mode and limit, 16 where no limit is recorded, and off where no mode is', () => {
    expect(runEqualized(config({ equalize: 'depthwise', equalizeMaxScale: MAX_SCALE }))).toEqual({
      equalize: 'depthwise',
      equalizeMaxScale: MAX_SCALE,
    });
    expect(runEqualized(config({ equalize: 'depthwise' }))).toEqual({
      equalize: 'depthwise',
      equalizeMaxScale: LEGACY_MAX_SCALE,
    });
    expect(runEqualized(config({})).equalize).toBe('off');
    expect(MAX_SCALE).not.toBe(LEGACY_MAX_SCALE);
  });

  it('refuses a limit config.json could not record', async () => {
    for (const limit of [Infinity, Number.NaN, 0.5])
      await expect(openSession({ modelPath: 'm.onnx', dataPath: 'd', equalizeMaxScale: limit })).rejects.toThrow(
        /equalization scale limit must be a finite number of 1 or more/,
      );
  });
});

/**
 * Strict number options: plain decimal only (no hex, no exponent, no empty value, no Infinity),
 * within a stated range. Anything else is a usage error (exit 2) that names the option.
 */
export interface NumberRule {
  integer?: boolean;
  min?: number;
  max?: number;
}

const DECIMAL = /^-?\d+(\.\d+)?$/;

/** The value of `--name`, undefined when absent, or a usage error sentence. */
export function numberOption(
  values: Record<string, unknown>,
  name: string,
  rule: NumberRule = {},
): number | undefined | { usageError: string } {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const text = String(raw).trim();
  const what = rule.integer ? 'a whole number' : 'a number';
  const range =
    rule.min !== undefined && rule.max !== undefined
      ? ` from ${rule.min} to ${rule.max}`
      : rule.min !== undefined
        ? ` >= ${rule.min}`
        : rule.max !== undefined
          ? ` <= ${rule.max}`
          : '';
  const fail = { usageError: `--${name} must be ${what}${range}, not "${text}".` };
  if (!DECIMAL.test(text)) return fail;
  const n = Number(text);
  if (!Number.isFinite(n) || (rule.integer && !Number.isSafeInteger(n))) return fail;
  if ((rule.min !== undefined && n < rule.min) || (rule.max !== undefined && n > rule.max)) return fail;
  return n;
}

import { startWebHost } from '../../web/server.js';
import { ensureRendererBuilt } from '../../web/renderer-build.js';
import type { Command } from '../command.js';
import { numberOption } from '../numbers.js';

export const serveCommand: Command = {
  name: 'serve',
  usage: 'fxpq serve [--port P]',
  summary: 'the desktop UI in a browser, on 127.0.0.1 with an access token',
  options: { port: { type: 'string' } },
  async run({ positionals, values, out, err }) {
    if (positionals.length > 0) return { usageError: 'serve takes no positional arguments.' };
    const port = numberOption(values, 'port', { integer: true, min: 0, max: 65535 }) ?? 0;
    if (typeof port === 'object') return port;
    const rendererDir = await ensureRendererBuilt((line) => err.write(`${line}\n`));
    const host = await startWebHost({ rendererDir, port });
    out.write(`FxPQ is serving on ${host.url}\nOpen that address in a browser; press Ctrl+C to stop.\n`);
    await new Promise<void>((resolve) => {
      // Running searches stop at their next evaluation and keep their checkpoints (resumable).
      const stop = (): void => void host.services.jobs.drain(true).then(() => host.close().then(resolve));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  },
};

// dais for goals/processing.goal.ts in its own process: serve() from the library with its defaults, on a repository
// with declared processing. Prints {"port":N} once listening. Usage: node --import tsx goals/serve-in-process.ts <repo>
import { serve } from '../src/serve/index.ts';

try {
  const s = await serve({ model: process.argv[2], port: 0 });
  process.stdout.write(`${JSON.stringify({ port: s.port })}\n`);
} catch (e) {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
}

// Builds the dashboard into ../service/static (committed, so the service serves it without npm):
//   npm run build          write app.js, app.css, index.html
//   npm run check          build into a temp dir and fail if service/static differs (the bundle is stale)
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const target = resolve(here, '..', 'service', 'static');
const check = process.argv.includes('--check');
const out = check ? mkdtempSync(join(tmpdir(), 'bisonsync-web-')) : target;
mkdirSync(out, { recursive: true });

const common = { bundle: true, minify: true, legalComments: 'eof', logLevel: 'warning', charset: 'utf8' };
await esbuild.build({
  ...common,
  entryPoints: [join(here, 'src', 'main.js')],
  outfile: join(out, 'app.js'),
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  platform: 'browser',
});
await esbuild.build({
  ...common,
  entryPoints: [join(here, 'src', 'styles.css')],
  outfile: join(out, 'app.css'),
  target: ['chrome111', 'firefox113', 'safari16.2'],
});
writeFileSync(join(out, 'index.html'), readFileSync(join(here, 'src', 'index.html')));

if (check) {
  const stale = [];
  for (const name of readdirSync(out)) {
    const committed = join(target, name);
    if (!existsSync(committed) || !readFileSync(committed).equals(readFileSync(join(out, name)))) stale.push(name);
  }
  rmSync(out, { recursive: true, force: true });
  if (stale.length) {
    console.error(`service/static is stale (${stale.join(', ')}): run \`npm run build\` in web/ and commit the result`);
    process.exit(1);
  }
  console.log('service/static matches web/src');
} else {
  for (const name of readdirSync(out)) console.log(`${join('service', 'static', name)}  ${readFileSync(join(out, name)).length} bytes`);
}

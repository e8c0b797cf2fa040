// imagegate's Node.js parts probe: checks the parts named on the command
// line one by one in this process and reports each as one JSON line on
// stdout (fd 1, written synchronously), so that a crash or a hang loses only
// the part at fault. It needs nothing but fs and process, both built in.
//
// argv: TIMEOUT_MS PART... where PART is "module:NAME" (require'd; crypto
// must also list hashes and hash, as a build without OpenSSL cannot),
// "intl" (full ICU: a non-English locale formats as that locale does) or
// "tool:NAME" (npm, npx, corepack run with --version beside this node).
// Lines: {"t":"hello","version":...,"modules":[...]} then per part
// {"t":"start","m":...} and {"t":"ok"|"err"|"timeout","m":...,"e":...},
// and {"t":"done"} at the end.
'use strict';
const fs = require('fs');
const emit = (o) => fs.writeSync(1, JSON.stringify(o) + '\n');
const text = (e) => (e && e.message !== undefined ? (e.code ? e.code + ': ' : '') + e.message : String(e)).split('\n')[0];
const path = require('path');
// Run as node -e SCRIPT TIMEOUT PART...: argv[1] is the first argument.
const timeout = Number(process.argv[1]);
const parts = process.argv.slice(2);
// What modules print must not mix with the protocol.
process.stdout.write = process.stderr.write.bind(process.stderr);
console.log = console.error;

const prefix = path.dirname(path.dirname(process.execPath));
const toolScripts = {
  npm: ['lib/node_modules/npm/bin/npm-cli.js', 'share/nodejs/npm/bin/npm-cli.js', 'lib/node_modules/npm/bin/npm-cli.js'],
  npx: ['lib/node_modules/npm/bin/npx-cli.js', 'share/nodejs/npm/bin/npx-cli.js'],
  corepack: ['lib/node_modules/corepack/dist/corepack.js', 'share/nodejs/corepack/dist/corepack.js'],
};

function check(part) {
  if (part.startsWith('module:')) {
    const name = part.slice(7);
    const m = require(name);
    if (name === 'crypto') {
      if (!process.versions.openssl) throw new Error('built without OpenSSL (process.versions.openssl is empty)');
      if (m.getHashes().length === 0) throw new Error('crypto.getHashes() is empty');
      m.createHash('sha256').update('imagegate').digest('hex');
    }
    return;
  }
  if (part === 'intl') {
    const mode = (process.config && process.config.variables && process.config.variables.icu_small) ? 'small-icu' : (typeof Intl === 'object' ? 'icu' : 'none');
    if (typeof Intl !== 'object') throw new Error('built without ICU (no Intl object)');
    const month = new Intl.DateTimeFormat('es', { month: 'long', timeZone: 'UTC' }).format(new Date(Date.UTC(2020, 0, 15)));
    if (month !== 'enero') throw new Error('Intl has no Spanish locale data (' + mode + '): a January date formats as "' + month + '", not "enero"');
    return;
  }
  if (part.startsWith('tool:')) {
    const name = part.slice(5);
    const script = (toolScripts[name] || []).map((s) => path.join(prefix, s)).find((s) => fs.existsSync(s));
    if (!script) throw new Error(name + ' is not installed beside ' + process.execPath);
    const r = require('child_process').spawnSync(process.execPath, [script, '--version'], {
      timeout, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: '/tmp', COREPACK_ENABLE_DOWNLOAD_PROMPT: '0', npm_config_update_notifier: 'false' },
    });
    if (r.error) throw r.error;
    if (r.status !== 0) throw new Error(name + ' --version: exit status ' + r.status + ': ' + (r.stderr || '').trim().split('\n').pop());
    return;
  }
  throw new Error('unknown part ' + part);
}

emit({ t: 'hello', version: process.versions.node, modules: require('module').builtinModules.filter((m) => !m.startsWith('_')) });
for (const part of parts) {
  emit({ t: 'start', m: part });
  try {
    check(part);
    emit({ t: 'ok', m: part });
  } catch (e) {
    emit({ t: 'err', m: part, e: text(e) });
  }
}
emit({ t: 'done' });
process.reallyExit ? process.reallyExit(0) : process.exit(0);

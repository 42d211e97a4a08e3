// Lets plain `node` child processes (writers killed by the crash test, the concurrency
// workers) load the TypeScript sources directly: each .ts file is transpiled on require,
// without type checking. Tests do not depend on a build of dist/. Transpiled output is
// cached in the OS temp dir (keyed by path, size and mtime) because loading the compiler
// costs more than the test work of a short-lived child.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const cacheDir = path.join(os.tmpdir(), `pcache-ts-register-${process.getuid ? process.getuid() : 'u'}`);
let ts;

require.extensions['.ts'] = function loadTypeScript(module, filename) {
  const st = fs.statSync(filename);
  const key = crypto.createHash('sha256').update(`${filename}\0${st.size}\0${st.mtimeMs}`).digest('hex');
  const cached = path.join(cacheDir, `${key}.js`);
  let code;
  try {
    code = fs.readFileSync(cached, 'utf8');
  } catch {
    ts = ts || require('typescript');
    code = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
      fileName: filename,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    }).outputText;
    fs.mkdirSync(cacheDir, { recursive: true });
    const tmp = `${cached}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, code);
    fs.renameSync(tmp, cached); // atomic: concurrent children never read half a file
  }
  module._compile(code, filename);
};

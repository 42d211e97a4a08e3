// Lets plain `node` child processes (writers killed by the crash test, the concurrency
// workers) load the TypeScript sources directly: each .ts file is transpiled on require,
// without type checking. Tests do not depend on a build of dist/.
'use strict';
const fs = require('fs');
const ts = require('typescript');

require.extensions['.ts'] = function loadTypeScript(module, filename) {
  const output = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
      sourceMap: false,
    },
  });
  module._compile(output.outputText, filename);
};

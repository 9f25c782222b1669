// One line per test file (PASS/FAIL, its path, its time), the failures in full, then Jest's totals.
// What the code under test logs stays in the test results instead of flooding the output: set
// IAP_SYNC_TEST_OUTPUT=verbose (or run a single file with --verbose) to see Jest's default reporter.
const path = require('node:path');

class SuiteReporter {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
  }

  onTestResult(_test, result) {
    const failed = result.numFailingTests > 0 || result.testExecError !== undefined;
    const seconds = ((result.perfStats.end - result.perfStats.start) / 1000).toFixed(1);
    process.stdout.write(`${failed ? 'FAIL' : 'PASS'} ${path.relative(this.rootDir, result.testFilePath)} (${seconds} s)\n`);
    if (failed && result.failureMessage) process.stdout.write(`${result.failureMessage}\n`);
  }

  onRunComplete(_contexts, results) {
    const suites = `${results.numFailedTestSuites} failed, ${results.numPassedTestSuites} passed, ${results.numTotalTestSuites} total`;
    const tests = `${results.numFailedTests} failed, ${results.numPassedTests} passed, ${results.numTotalTests} total`;
    const seconds = ((Date.now() - results.startTime) / 1000).toFixed(0);
    process.stdout.write(`\nTest Suites: ${suites}\nTests:       ${tests}\nTime:        ${seconds} s\n`);
  }
}
module.exports = SuiteReporter;

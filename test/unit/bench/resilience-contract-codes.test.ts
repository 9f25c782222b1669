import { loadContractCodes, parseContractCodes } from '../../../bench/resilience/contract-codes';
import { ERROR_CODES } from '../../../lambdas/platform/errors';

const TABLE = `# contract

## 6. Errors (code table)

| HTTP | Code | When |
|---|---|---|
| 400 | REQ0001 | invalid body |
| 401 | AUTH0001 / AUTH0002 | missing / invalid credentials |
| 409 | GPLAY0300 | Google: a synchronization for this \`purchaseToken\` is active |

## 7. Results

| 500 | NOTACODE | a later table is not read |
`;

describe('the documented error codes the fuzz judges against', () => {
  it('reads each code of the Errors table with its HTTP status, split on "/"', () => {
    expect([...parseContractCodes(TABLE)]).toEqual([
      ['REQ0001', 400],
      ['AUTH0001', 401],
      ['AUTH0002', 401],
      ['GPLAY0300', 409],
    ]);
  });

  it('refuses a contract without an Errors section rather than judging against nothing', () => {
    expect(() => parseContractCodes('# contract\n\n## 1. Routes\n')).toThrow(/Errors/);
  });

  it('docs/api.md documents exactly the codes the product answers, each with its HTTP status', () => {
    const documented = Object.fromEntries(loadContractCodes());
    const answered = Object.fromEntries(Object.entries(ERROR_CODES).map(([code, { status }]) => [code, status]));
    expect(documented).toEqual(answered);
  });
});

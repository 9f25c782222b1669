import { Stack } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * The AwsSolutions-IAM5 finding id of a wildcard resource, rendered the way cdk-nag renders it
 * (`Ref` → `<AWS::Region>`, `Fn::GetAtt` → `<Id.Attr>`, `Fn::Join` joined), so an acknowledgement
 * names exactly that resource and no other. The region, account and partition are literal when the
 * stack has an explicit environment and pseudo-parameter references when it does not.
 */
export function iam5ResourceFinding(scope: IConstruct, resource: string): string {
  return `AwsSolutions-IAM5[Resource::${flatten(Stack.of(scope).resolve(resource))}]`;
}

function flatten(node: unknown): string {
  if (typeof node === 'string') return node;
  if (typeof node === 'object' && node !== null) {
    const record = node as Record<string, unknown>;
    const join = record['Fn::Join'];
    if (Array.isArray(join)) {
      const [delimiter, items] = join as [string, unknown[]];
      return items.map(flatten).join(delimiter);
    }
    const getAtt = record['Fn::GetAtt'];
    if (Array.isArray(getAtt)) return `<${getAtt.map(flatten).join('.')}>`;
    if ('Ref' in record) return `<${flatten(record.Ref)}>`;
  }
  return JSON.stringify(node);
}

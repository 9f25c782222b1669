import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { TABLE_DEFINITION } from '../../lambdas/adapters/dynamodb-table';

const ATTRIBUTE_TYPES: Record<'S' | 'N' | 'B', AttributeType> = {
  S: AttributeType.STRING,
  N: AttributeType.NUMBER,
  B: AttributeType.BINARY,
};

/**
 * The single table of iap-sync, shaped by TABLE_DEFINITION (the same definition the local runtime
 * creates in DynamoDB Local). It holds entitlements and ownership history, so it survives stack
 * deletion: deletion protection plus RETAIN, and point-in-time recovery for bad writes.
 */
export class DataTable extends Construct {
  readonly table: Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.table = new Table(this, 'Table', {
      partitionKey: {
        name: TABLE_DEFINITION.partitionKey.name,
        type: ATTRIBUTE_TYPES[TABLE_DEFINITION.partitionKey.type],
      },
      sortKey: {
        name: TABLE_DEFINITION.sortKey.name,
        type: ATTRIBUTE_TYPES[TABLE_DEFINITION.sortKey.type],
      },
      timeToLiveAttribute: TABLE_DEFINITION.timeToLiveAttribute,
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.AWS_MANAGED,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}

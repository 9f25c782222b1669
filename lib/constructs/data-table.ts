import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { TABLE_DEFINITION } from '../../lambdas/platform/dynamodb-table';

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
    const { openIndex } = TABLE_DEFINITION;
    this.table.addGlobalSecondaryIndex({
      indexName: openIndex.indexName,
      partitionKey: { name: openIndex.partitionKey.name, type: ATTRIBUTE_TYPES[openIndex.partitionKey.type] },
      sortKey: { name: openIndex.sortKey.name, type: ATTRIBUTE_TYPES[openIndex.sortKey.type] },
      projectionType: ProjectionType[openIndex.projection],
    });
    const { reconcileIndex } = TABLE_DEFINITION;
    this.table.addGlobalSecondaryIndex({
      indexName: reconcileIndex.indexName,
      partitionKey: { name: reconcileIndex.partitionKey.name, type: ATTRIBUTE_TYPES[reconcileIndex.partitionKey.type] },
      sortKey: { name: reconcileIndex.sortKey.name, type: ATTRIBUTE_TYPES[reconcileIndex.sortKey.type] },
      projectionType: ProjectionType[reconcileIndex.projection],
      nonKeyAttributes: [...reconcileIndex.nonKeyAttributes],
    });
  }

  /**
   * Item access on the table itself. Table.grantReadData/grantReadWriteData would add `<table>/index/*`
   * too (a wildcard cdk-nag rightly flags); only the recovery sweeper reads an index (grantOpenIndexQuery).
   */
  grantItems(grantee: IGrantable, access: 'read' | 'readwrite'): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({
        actions: access === 'read' ? READ_ACTIONS : [...READ_ACTIONS, ...WRITE_ACTIONS],
        resources: [this.table.tableArn],
      }),
    );
  }

  /** Query on the open-synchronizations index, by its own ARN. */
  grantOpenIndexQuery(grantee: IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['dynamodb:Query'],
        resources: [`${this.table.tableArn}/index/${TABLE_DEFINITION.openIndex.indexName}`],
      }),
    );
  }

  /** The workflow's MarkPublished state: one UpdateItem, nothing else. */
  grantUpdateItem(grantee: IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(new PolicyStatement({ actions: ['dynamodb:UpdateItem'], resources: [this.table.tableArn] }));
  }
}

/** What the functions use (GetItem, Query, TransactWriteItems' ConditionCheck), no Scan of the whole table. */
const READ_ACTIONS = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query', 'dynamodb:ConditionCheckItem', 'dynamodb:DescribeTable'];
const WRITE_ACTIONS = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'];

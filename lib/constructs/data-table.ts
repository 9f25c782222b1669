import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, type ITable, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { TABLE_DEFINITION } from '../../lambdas/platform/dynamodb-table';

const ATTRIBUTE_TYPES: Record<'S' | 'N' | 'B', AttributeType> = {
  S: AttributeType.STRING,
  N: AttributeType.NUMBER,
  B: AttributeType.BINARY,
};

/** Props of {@link DataTable}. */
export interface DataTableProps {
  /**
   * Use this existing table instead of creating one: a table a destroyed stack left behind (RETAIN), or
   * one restored from a backup or a point in time. It must have TABLE_DEFINITION's keys, TTL attribute
   * and both indexes (a table this stack created has them); the stack neither changes nor deletes it.
   * @default a new table
   */
  existingTableName?: string;
}

/** DynamoDB table names: 3 to 255 of letters, digits, `_`, `-` and `.`. */
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;

/**
 * The single table of iap-sync, shaped by TABLE_DEFINITION (the same definition the local runtime
 * creates in DynamoDB Local). It holds entitlements and ownership history, so it survives stack
 * deletion: deletion protection plus RETAIN, and point-in-time recovery for bad writes. Or an existing
 * table of that shape, by name (a kept or restored one).
 */
export class DataTable extends Construct {
  readonly table: ITable;
  /** True when the table is an existing one the stack only uses. */
  readonly imported: boolean;

  constructor(scope: Construct, id: string, props: DataTableProps = {}) {
    super(scope, id);
    const { existingTableName } = props;
    this.imported = existingTableName !== undefined;
    if (existingTableName !== undefined) {
      if (!TABLE_NAME.test(existingTableName)) throw new Error(`existingTableName "${existingTableName}" is not a DynamoDB table name`);
      // The grants below name the table's and its indexes' ARNs, so an imported table is used exactly like a created one.
      this.table = Table.fromTableAttributes(this, 'Table', {
        tableName: existingTableName,
        globalIndexes: [TABLE_DEFINITION.openIndex.indexName, TABLE_DEFINITION.reconcileIndex.indexName],
      });
      return;
    }
    const table = new Table(this, 'Table', {
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
    table.addGlobalSecondaryIndex({
      indexName: openIndex.indexName,
      partitionKey: { name: openIndex.partitionKey.name, type: ATTRIBUTE_TYPES[openIndex.partitionKey.type] },
      sortKey: { name: openIndex.sortKey.name, type: ATTRIBUTE_TYPES[openIndex.sortKey.type] },
      projectionType: ProjectionType[openIndex.projection],
    });
    const { reconcileIndex } = TABLE_DEFINITION;
    table.addGlobalSecondaryIndex({
      indexName: reconcileIndex.indexName,
      partitionKey: { name: reconcileIndex.partitionKey.name, type: ATTRIBUTE_TYPES[reconcileIndex.partitionKey.type] },
      sortKey: { name: reconcileIndex.sortKey.name, type: ATTRIBUTE_TYPES[reconcileIndex.sortKey.type] },
      projectionType: ProjectionType[reconcileIndex.projection],
      nonKeyAttributes: [...reconcileIndex.nonKeyAttributes],
    });
    this.table = table;
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

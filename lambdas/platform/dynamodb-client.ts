import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { awsClientConfig } from './aws-client-config';

/** A DynamoDB client with the functions' timeouts (awsClientConfig); the endpoint comes from AWS_ENDPOINT_URL_DYNAMODB when set (local). */
export function createDynamoDbClient(env: NodeJS.ProcessEnv = process.env): DynamoDBClient {
  return new DynamoDBClient(awsClientConfig(env));
}

/** One DocumentClient per container, over `client` (default: createDynamoDbClient()). */
export function createDocumentClient(client: DynamoDBClient = createDynamoDbClient()): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertEmptyValues: false },
  });
}

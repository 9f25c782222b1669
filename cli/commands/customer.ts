/** `iap-sync customer add`: registers a customer id under a publisher. */
import { idOption, type Args } from '../args';
import type { StackTarget } from '../target';
import { publishersOf, requirePublisher } from './publisher';

export function parseCustomerAdd(args: Args): { publisherId: number; customerId: number } {
  return { publisherId: idOption(args, 'publisher'), customerId: idOption(args, 'customer') };
}

export async function customerAdd(target: StackTarget, args: Args): Promise<{ publisherId: number; customerId: number }> {
  const { publisherId, customerId } = parseCustomerAdd(args);
  const publishers = publishersOf(target);
  await requirePublisher(target, publishers, publisherId);
  await publishers.putCustomer(publisherId, customerId);
  return { publisherId, customerId };
}

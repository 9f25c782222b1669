/** `iap-sync offer map`: which offer a store product grants, per publisher and store. */
import { STORES, type Store } from '../../lambdas/events/vocabulary';
import { idOption, oneOf, plainId, requiredString, type Args } from '../args';
import type { StackTarget } from '../target';
import { publishersOf, requirePublisher } from './publisher';

const MAX_PRODUCT_ID = 255;
const MAX_OFFER_ID = 64;

export interface OfferMapped {
  publisherId: number;
  store: Store;
  productId: string;
  offerId: string;
}

export function parseOfferMap(args: Args): OfferMapped {
  return {
    publisherId: idOption(args, 'publisher'),
    store: oneOf('--store', requiredString(args, 'store'), STORES),
    productId: plainId('--product', requiredString(args, 'product'), MAX_PRODUCT_ID),
    offerId: plainId('--offer', requiredString(args, 'offer'), MAX_OFFER_ID),
  };
}

export async function offerMap(target: StackTarget, args: Args): Promise<OfferMapped> {
  const { publisherId, store, productId, offerId } = parseOfferMap(args);
  const publishers = publishersOf(target);
  await requirePublisher(target, publishers, publisherId);
  await publishers.putOffer(publisherId, store, productId, offerId);
  return { publisherId, store, productId, offerId };
}

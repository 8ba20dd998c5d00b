export { MongoRateLimiter, SLOTS_COLLECTION, isRateBudgetReader, isStaleSlotReader, type StaleSlotReader, type MongoRateLimiterOptions, type QuotaBudget, type RateBudgetReader, type RateLimitBlock, type RateLimitBlockAdmin } from './mongoLimiter';
export { DEFAULT_TUNING, type LimiterTuning } from './math';

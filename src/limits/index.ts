export { MongoRateLimiter, isRateBudgetReader, type MongoRateLimiterOptions, type QuotaBudget, type RateBudgetReader } from './mongoLimiter';
export { DEFAULT_TUNING, type LimiterTuning } from './math';

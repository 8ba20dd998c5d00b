# syntax=docker/dockerfile:1
# ehr-sync image: one image, two processes (docker-compose.yml runs it as `worker` and as `api`).
#   docker build -t ehr-sync .
#   docker run --env-file .env ehr-sync node dist/src/worker.js
#
# Debian (glibc) rather than Alpine: @temporalio/core-bridge ships prebuilt native binaries for
# linux-x64-gnu / linux-arm64-gnu only.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# ---- build: all dependencies, compile TypeScript -------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# scripts/npm-install.sh is `npm ci` plus a narrow fallback for a lock file that lacks other
# platforms' optional binary packages (see the script).
COPY package.json package-lock.json ./
COPY scripts/npm-install.sh ./scripts/
RUN bash scripts/npm-install.sh
COPY tsconfig.json ./
COPY src ./src
# tsconfig.json also includes test/, bench/ and scripts/*.ts; they are not copied, so only src/ is
# compiled (to dist/src/...). Then the workflow bundle (dist/workflow-bundle.js), so that workers do not run
# webpack as they start (src/temporal/workflowCode.ts).
RUN npx tsc -p tsconfig.json && node dist/src/temporal/workflowCode.js

# ---- deps: production dependencies only ------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/npm-install.sh ./scripts/
RUN bash scripts/npm-install.sh --omit=dev && npm cache clean --force

# ---- runtime ---------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
# The prebuilt workflow bundle of the build stage (only the worker reads it).
ENV WORKFLOW_BUNDLE_PATH=/app/dist/workflow-bundle.js
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node package.json ./
USER node
# The API listens on API_PORT (3000); the worker opens no port.
EXPOSE 3000
CMD ["node", "--enable-source-maps", "dist/src/api/main.js"]

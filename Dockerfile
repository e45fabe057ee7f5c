# syntax=docker/dockerfile:1
# The inference server and web demo in one image: build the demo and bundle the TypeScript server in a
# build stage (all dependencies), then run it on production dependencies only, as the non-root `node` user.
#
#   docker build -t mnist-onnx-cnn .
#   docker run --rm -p 8080:8080 -v "$PWD/models:/models:ro" mnist-onnx-cnn
#
# Models come from the volume /models (<name>/<version>/model.onnx, config.pbtxt beside the versions), the
# same repository Triton reads. SIGTERM (docker stop, Kubernetes) finishes in-flight requests, then exits.

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc* ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build:web && node deploy/bundle-server.mjs dist/serve.mjs

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json .npmrc* ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist
COPY --from=build /src/web-demo/dist ./web-demo/dist
USER node
VOLUME ["/models"]
EXPOSE 8080
# The slim image has no curl: Node's own fetch probes liveness.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/v2/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
# Exec form: node is PID 1 and receives SIGTERM itself (npm would not forward it reliably).
CMD ["node", "dist/serve.mjs", "--models", "/models", "--host", "0.0.0.0", "--port", "8080", "--quiet"]

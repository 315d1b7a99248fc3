# kvpa controller image. Build: docker build -t kvpa:0.1.0 .   (the chart's default image)
# Stage 1 installs the locked dependencies and compiles src/ to dist/; stage 2 is a distroless Node
# runtime (no shell, no package manager) running as uid 65532, the user the chart's pod runs as.
ARG NODE_MAJOR=22

FROM node:${NODE_MAJOR}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are here; the build runs below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
# Data read at run time, relative to the package root (as in the npm package's `files`).
COPY crds ./crds
COPY policies ./policies
COPY calibration ./calibration
USER 65532:65532
ENTRYPOINT ["/nodejs/bin/node", "/app/bin/kvpa.js", "controller"]

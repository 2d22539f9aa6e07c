# kallglot-sip-gateway: SIP B2BUA between a PBX and Telnyx with Kallglot translation.
# No build step: Node 24 runs the TypeScript sources directly (type stripping).
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY src ./src
COPY config ./config
# SIP (UDP+TCP) and HTTP (health, webhooks, metrics).
EXPOSE 5060/udp 5060/tcp 8080/tcp
# SIP_PUBLIC_ADDRESS is required in a container (-e SIP_PUBLIC_ADDRESS=<the address Telnyx reaches>) unless it runs
# with --network host: on a bridge network the only address the gateway sees is the container's own (172.x), and
# it would write that unreachable address in Via/Contact. deploy/docker-compose.yml refuses to start without it.
ENV DATA_DIR=/var/lib/kallglot-gateway
RUN mkdir -p /var/lib/kallglot-gateway && chown node:node /var/lib/kallglot-gateway
VOLUME ["/var/lib/kallglot-gateway"]
USER node
# Liveness from inside the container (uses HTTP_PORT if set).
HEALTHCHECK --interval=15s --timeout=3s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.HTTP_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM drains calls for DRAIN_TIMEOUT_SEC (30 s by default), then flushes the Kallglot session ends. Docker's
# default stop timeout is 10 s: it would SIGKILL the drain. Stop with `docker stop -t 45`, run with
# `--stop-timeout 45`, or set `stop_grace_period: 45s` in Compose (deploy/docker-compose.yml).
STOPSIGNAL SIGTERM
# --max-semi-space-size=8: V8's young generation, touched whole under load, at 8 MiB per semi-space instead of the
# default (16 MiB+): measured 40-80 MiB less RSS at the same CPU per call (docs/benchmarks.md, "Memory").
CMD ["node", "--max-semi-space-size=8", "src/main.ts"]

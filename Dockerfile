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
ENV DATA_DIR=/var/lib/kallglot-gateway
RUN mkdir -p /var/lib/kallglot-gateway && chown node:node /var/lib/kallglot-gateway
VOLUME ["/var/lib/kallglot-gateway"]
USER node
# Liveness from inside the container (uses HTTP_PORT if set).
HEALTHCHECK --interval=15s --timeout=3s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.HTTP_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM drains calls for DRAIN_TIMEOUT_SEC (30 s by default): give the container longer than that to stop.
STOPSIGNAL SIGTERM
CMD ["node", "src/main.ts"]

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
STOPSIGNAL SIGTERM
CMD ["node", "src/main.ts"]

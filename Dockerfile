# The idtx image: FROM scratch around a static idtx, so that it builds with
# no base image to pull. Build it with scripts/image.sh, which compiles the
# binary (CGO off: the embedded SQLite is pure Go) and prepares the context
# this file copies from: idtx, an empty data/ folder, and the build
# machine's CA certificates (for a configured server's https JWKS).
#
#   scripts/image.sh                 # builds idtx:dev
#   docker run --rm -p 18080:8080 -e IDTX_ISSUER=http://localhost:18080 idtx:dev serve --mock
#
# It runs as an unprivileged user (65532) that owns IDTX_HOME (/data, a
# volume) and nothing else, so it works with a read-only root filesystem
# (docker run --read-only). It listens on 0.0.0.0:8080; PORT changes the
# port. See README.md (Container image) for compose.
FROM scratch
COPY etc/ /etc/
COPY --chown=65532:65532 data/ /data/
COPY idtx /idtx
ENV IDTX_HOME=/data \
    IDTX_LISTEN=0.0.0.0:8080 \
    TMPDIR=/data
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["/idtx", "healthcheck"]
ENTRYPOINT ["/idtx"]
CMD ["serve"]

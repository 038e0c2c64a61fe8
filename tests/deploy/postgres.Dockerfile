# tests/deploy/postgres.Dockerfile: a stand-in for the official postgres:15-bookworm image,
# which cannot be pulled on machines without an image registry (tests/deploy/compose.test.yml
# puts it in that image's place for the deployment test; users keep the official one).
#
# PostgreSQL 15 from Debian's package on the local debian:bookworm-slim, with the official
# image's contract as far as docker-compose.yml uses it: POSTGRES_USER, POSTGRES_PASSWORD and
# POSTGRES_DB make the cluster and its database on first start; the data lives in
# /var/lib/postgresql/data (a volume); pg_isready is on PATH for the healthcheck; port 5432
# takes password (scram-sha-256) connections from anywhere, the local socket trusts.
# It runs as the package's unprivileged `postgres` user throughout (initdb and postgres refuse
# root), where the official image starts as root and drops to it.
FROM debian:bookworm-slim
LABEL org.opencontainers.image.title=xero-sync-test-postgres
RUN mkdir -p /etc/postgresql-common/createcluster.d \
 && echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/no-main.conf \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown postgres:postgres /var/lib/postgresql/data /var/run/postgresql \
 && chmod 700 /var/lib/postgresql/data
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/
USER postgres
EXPOSE 5432
# as the official image: SIGINT is PostgreSQL's fast shutdown
STOPSIGNAL SIGINT
ENTRYPOINT ["postgres-entrypoint.sh"]
CMD ["postgres"]

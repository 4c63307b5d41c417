# ccpulse developer entry points. `make demo` and `make test` work on a fresh
# machine of this kind: they install what is missing first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
KAFKA_VERSION ?= 4.1.1
KAFKA_CACHE ?= $(HOME)/.cache/ccpulse
PYTEST_ARGS ?=
# pytest-xdist workers: most service tests wait on paced input, brokers and servers, so more
# workers than cores pays; each worker starts its own session services (free ports, own dirs)
TEST_WORKERS ?= 4
XDIST := -n $(TEST_WORKERS) --dist load --maxschedchunk 1

.PHONY: demo test durations install system-deps kafka-jars registry-app lint typecheck unit services-up services-down clean

$(STAMP): pyproject.toml
	@echo ">> creating $(VENV) and installing ccpulse[dev]"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# Debian packages the tests use: ClickHouse 18.16, Prometheus 2.42 (+promtool), Alertmanager 0.25,
# Java 17 and Maven for the Apache Kafka jars, kcat (a standard Kafka client reading our
# topics), Chromium (headless, renders the plan report to a PNG). apt-get only when something
# is missing. Apicurio Registry 3.3 needs a JDK >= 21:
# this kind of machine ships Temurin 25 under /usr/lib/jvm (Debian 12 has no Java 21).
system-deps:
	@missing=""; \
	test -x /usr/sbin/clickhouse-server || missing="$$missing clickhouse-server"; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v prometheus-alertmanager >/dev/null || missing="$$missing prometheus-alertmanager"; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	command -v kcat >/dev/null || missing="$$missing kcat"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo ">> apt-get install$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; \
	else echo ">> system packages present"; fi

kafka-jars: install
	$(BIN)/ccpulse services prepare --kafka-version $(KAFKA_VERSION) --cache-dir $(KAFKA_CACHE)

# Apicurio Registry (Confluent-compatible Schema Registry) for the registry tests: Maven
# unpacks its published Quarkus distribution from Maven Central into $(KAFKA_CACHE) once.
registry-app: install
	$(BIN)/ccpulse services prepare --registry --kafka-version $(KAFKA_VERSION) --cache-dir $(KAFKA_CACHE)

lint: install
	$(BIN)/ruff check streams tests bench
	$(BIN)/mypy

unit: install
	$(BIN)/pytest -m "not services" -n 2 $(PYTEST_ARGS)

test: install system-deps kafka-jars registry-app lint
	$(BIN)/pytest $(XDIST) $(PYTEST_ARGS)

# the durations make test schedules by (longest first): refresh after adding slow tests
durations: install system-deps kafka-jars registry-app
	$(BIN)/pytest $(XDIST) --record-durations $(PYTEST_ARGS)

demo: install
	$(BIN)/ccpulse demo

services-up: install system-deps kafka-jars
	$(BIN)/ccpulse services up

services-down:
	$(BIN)/ccpulse services down

clean:
	rm -rf .ccpulse .pytest_cache .mypy_cache .ruff_cache

# The README's two promises: `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV := .dev

.PHONY: run test lint lock proto proto-check messages bench federation-demo soak client-wheel mutation clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' -c constraints.txt
	touch $(STAMP)

# Re-resolve the dependencies to the newest versions pyproject.toml allows, in a scratch
# environment, and pin them in constraints.txt (then run `make test` and commit).
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e '.[dev]'
	{ sed -n '1,3p' constraints.txt; .venv-lock/bin/python -m pip freeze --exclude-editable; } > constraints.new
	mv constraints.new constraints.txt
	rm -rf .venv-lock

# Dev PKI + members + gateway on SQLite, in the foreground (Ctrl-C stops it).
run: $(STAMP)
	$(PY) -m gateway.ops.devenv --dir $(DEV)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP) proto-check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy gateway clients certs tests bench
	$(PY) -m pytest -q -p no:cacheprovider tests/unit/test_architecture.py  # layers; the client's boundary
	VENV_BIN=$(VENV)/bin deploy/check.sh

proto: $(STAMP)
	PYTHON=$(PY) scripts/gen_proto.sh

# Regenerate and fail when the committed code differs.
proto-check: $(STAMP)
	PYTHON=$(PY) scripts/gen_proto.sh
	git diff --exit-code -- gateway/pb || (echo "generated code is stale: run 'make proto' and commit" >&2; exit 1)
	test -z "$$(git status --porcelain -- gateway/pb)" || (echo "untracked generated files: run 'make proto' and commit" >&2; exit 1)

# Extract the report's, the public pages' and the member CLI's strings and update every
# catalog; then translate the new entries in gateway/ops/locale/*/LC_MESSAGES/report.po,
# gateway/public/locale/*/LC_MESSAGES/public.po and clients/locale/*/LC_MESSAGES/alliance.po
# (the .po files are compiled when loaded).
messages: $(STAMP)
	$(VENV)/bin/pybabel --quiet extract -F babel.cfg --add-location=file --sort-by-file \
	  --project=alliance-gateway --no-wrap -o gateway/ops/locale/report.pot .
	for l in zh_CN en; do \
	  test -f gateway/ops/locale/$$l/LC_MESSAGES/report.po \
	    || $(VENV)/bin/pybabel --quiet init -D report -l $$l -i gateway/ops/locale/report.pot -d gateway/ops/locale; \
	done
	$(VENV)/bin/pybabel --quiet update -D report -i gateway/ops/locale/report.pot -d gateway/ops/locale --no-wrap --ignore-obsolete --ignore-pot-creation-date
	# The public pages (gateway/public/locale/*/LC_MESSAGES/public.po), domain "public".
	$(VENV)/bin/pybabel --quiet extract -F babel-public.cfg --add-location=file --sort-by-file \
	  --project=alliance-gateway --no-wrap -o gateway/public/locale/public.pot .
	for l in zh_CN en; do \
	  test -f gateway/public/locale/$$l/LC_MESSAGES/public.po \
	    || $(VENV)/bin/pybabel --quiet init -D public -l $$l -i gateway/public/locale/public.pot -d gateway/public/locale; \
	done
	$(VENV)/bin/pybabel --quiet update -D public -i gateway/public/locale/public.pot -d gateway/public/locale --no-wrap --ignore-obsolete --ignore-pot-creation-date
	# The member CLI (clients/locale/*/LC_MESSAGES/alliance.po), domain "alliance".
	$(VENV)/bin/pybabel --quiet extract -F babel-client.cfg --add-location=file --sort-by-file \
	  --project=alliance-client --no-wrap -o clients/locale/alliance.pot .
	for l in zh_CN en; do \
	  test -f clients/locale/$$l/LC_MESSAGES/alliance.po \
	    || $(VENV)/bin/pybabel --quiet init -D alliance -l $$l -i clients/locale/alliance.pot -d clients/locale; \
	done
	$(VENV)/bin/pybabel --quiet update -D alliance -i clients/locale/alliance.pot -d clients/locale --no-wrap --ignore-obsolete --ignore-pot-creation-date

bench: $(STAMP)
	$(PY) -m bench

# Three regional gateways (ZJ, GD, BJ) federating on this machine; prints the story.
federation-demo: $(STAMP)
	$(PY) -m gateway.ops.federation_demo

# Bounded mixed load on two federated gateways; e.g. SOAK_ARGS="--duration-s 600 --json soak.json".
soak: $(STAMP)
	$(PY) -m gateway.ops.soak $(SOAK_ARGS)

# The client distribution for platforms (packaging/client): dist/alliance_client-*.whl.
client-wheel: $(STAMP)
	rm -rf packaging/client/build
	$(PY) -m pip wheel --no-deps --wheel-dir dist packaging/client

# Mutation testing of the trust boundary (docs/TESTING.md); not part of `make test`.
# It follows the plan in pyproject.toml (each group with its own tests). Narrow it:
# make mutation MUTATION_ARGS="--modules gateway/core/dsse.py" (that group's tests), or add --tests …
mutation: $(STAMP)
	nice -n 19 $(PY) scripts/mutation.py $(MUTATION_ARGS)

clean:
	rm -rf $(VENV) $(DEV) .mypy_cache .pytest_cache .ruff_cache .hypothesis mutants

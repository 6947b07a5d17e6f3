# The two commands: `make demo` runs hebi on this machine, `make test` runs every test.
# Both install what is missing first (scripts/bootstrap.sh).
.PHONY: demo test install clean

demo:
	@scripts/bootstrap.sh demo
	@.venv/bin/python scripts/demo.py

test:
	@scripts/bootstrap.sh test
	@.venv/bin/python -m pytest $(PYTEST_ARGS)

install:
	@scripts/bootstrap.sh test

clean:
	rm -rf .venv web/node_modules web/dist .demo

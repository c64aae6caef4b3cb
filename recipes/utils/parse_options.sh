#!/usr/bin/env bash
# Kaldi-style option parsing, sourced by run.sh after its defaults:
# "--some-name VALUE" sets the existing variable some_name to VALUE; "--help" prints them.
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      echo "Options (defaults):"; grep -E '^[a-z_]+=' "$0" | sed 's/^/  --/; s/_/-/g; s/=/ /'
      exit 0 ;;
    --*)
      name=$(echo "${1#--}" | tr '-' '_')
      if [ -z "${!name+set}" ]; then echo "$0: unknown option $1" >&2; exit 2; fi
      if [ $# -lt 2 ]; then echo "$0: option $1 needs a value" >&2; exit 2; fi
      printf -v "$name" '%s' "$2"; shift 2 ;;
    *) echo "$0: unexpected argument $1" >&2; exit 2 ;;
  esac
done

# Sourced by scripts/demo, scripts/test and scripts/install (from the repository's root): the
# virtual environment in .venv made from the lock, and the C compiler evdev is built with.

# The C compiler and headers evdev (the barcode scanners' library, source only on PyPI) is
# built with: installed with apt-get where this runs as root on Debian or Raspberry Pi OS,
# otherwise named. Missing ones are not fatal here: pip says why if it does need them.
ensure_compiler() {
    local include cc missing=()
    include="$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
    cc="$(python3 -c 'import sysconfig; print((sysconfig.get_config_var("CC") or "cc").split()[0])')"
    command -v "$cc" >/dev/null || missing+=("a C compiler ($cc)")
    [ -f "$include/Python.h" ] || missing+=("Python's headers ($include/Python.h)")
    [ -f /usr/include/linux/input.h ] || missing+=("Linux's headers (/usr/include/linux/input.h)")
    [ ${#missing[@]} = 0 ] && return 0
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing gcc, libc6-dev and python3-dev (evdev is built from source)" >&2
        { apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev python3-dev; } >/dev/null ||
            echo "could not install gcc, libc6-dev and python3-dev with apt-get" >&2
        missing=()
        command -v "$cc" >/dev/null || missing+=("a C compiler ($cc)")
        [ -f "$include/Python.h" ] || missing+=("Python's headers ($include/Python.h)")
        [ -f /usr/include/linux/input.h ] || missing+=("Linux's headers (/usr/include/linux/input.h)")
        [ ${#missing[@]} = 0 ] && return 0
    fi
    {
        echo "evdev (the barcode scanners' library) is built from source and needs what is missing here:"
        printf '  - %s\n' "${missing[@]}"
        echo "On Debian or Raspberry Pi OS: sudo apt-get install gcc libc6-dev python3-dev"
        echo "(for a Python not from Debian, e.g. pyenv's, that Python's own headers: rebuild or reinstall it with them)"
    } >&2
}

# needs_compiler [WHEELHOUSE]: whether installing the kiosk's lock builds evdev here, i.e. there is no
# wheelhouse or it holds no evdev wheel (a wheelhouse made offline for a school carries it built).
needs_compiler() {
    [ -z "${1:-}" ] && return 0
    ! compgen -G "$1/evdev-*.whl" >/dev/null
}

# ensure_venv LAYER...: .venv holds exactly deploy/requirements-LAYER.txt for each LAYER (kiosk,
# central, test, build) and bookcorner itself (editable, without its dependencies). A stamp in
# .venv records the digest of the lock, pyproject.toml, this file and the Python it was made
# with, and the layers installed: while they match, nothing is installed and no package index
# is needed. When they differ the venv is made anew, with the layers it had and those asked for.
ensure_venv() {
    local stamp=.venv/.bookcorner-lock digest old_digest="" old_layers="" layer layers=() pip
    digest="$({ cat pyproject.toml deploy/requirements-*.txt scripts/venv.sh; python3 -c 'import sys; print(sys.version)'; } |
        sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && .venv/bin/python -c '' 2>/dev/null; then
        read -r old_digest old_layers <"$stamp" || true
    fi
    local fresh=1
    if [ "$old_digest" = "$digest" ]; then
        fresh=0
        for layer in "$@"; do
            [[ " $old_layers " == *" $layer "* ]] || fresh=1
        done
        [ $fresh = 0 ] && return 0
    fi
    for layer in kiosk central test build; do
        if [[ " $* $old_layers " == *" $layer "* ]]; then layers+=("$layer"); fi
    done
    (IFS=,; echo "setting up .venv from the lock, deploy/requirements-{${layers[*]}}.txt (first run, or the lock changed)" >&2)
    [[ " ${layers[*]} " == *" kiosk "* ]] && ensure_compiler
    python3 -m venv --clear .venv
    pip=(.venv/bin/python -m pip --disable-pip-version-check --no-input install --quiet)
    # the pinned pip and setuptools first; then every other pin exactly, nothing resolved afresh;
    # then bookcorner, editable (the checkout is what runs), built with the pinned setuptools
    "${pip[@]}" -r deploy/requirements-build.txt
    local requirements=()
    for layer in "${layers[@]}"; do
        [ "$layer" = build ] || requirements+=(-r "deploy/requirements-$layer.txt")
    done
    "${pip[@]}" --no-deps "${requirements[@]}"
    # (setuptools warns, as a UserWarning, that folders named like the packages in the working
    # directory take precedence: here they are the packages themselves)
    PYTHONWARNINGS=ignore::UserWarning "${pip[@]}" --no-deps --no-build-isolation -e .
    .venv/bin/python -m pip check >/dev/null || {
        .venv/bin/python -m pip check >&2
        echo "the lock is incomplete (a package needs one it does not pin): run ./scripts/lock" >&2
        return 1
    }
    echo "$digest ${layers[*]}" >"$stamp"
}

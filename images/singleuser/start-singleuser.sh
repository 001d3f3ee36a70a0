#!/bin/bash
# Start the user's server the docker-stacks way: run every hook in before-notebook.d
# (*.sh are sourced so they can export variables, other executables are run), log a
# failing hook and go on, then become jupyterhub-singleuser (as openbis-singleuser, which
# leaves out the hub's own code: hub/openbis_jupyterhub/singleuser/launch.py).
hooks=/usr/local/bin/before-notebook.d
for hook in "$hooks"/*; do
    case "$hook" in
        *.sh)
            # shellcheck disable=SC1090
            source "$hook" || echo "start-singleuser: hook $hook failed (ignored)" >&2 ;;
        *)
            if [ -x "$hook" ]; then
                "$hook" || echo "start-singleuser: hook $hook failed (ignored)" >&2
            fi ;;
    esac
done
exec openbis-singleuser "$@"

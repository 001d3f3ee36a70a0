# shellcheck shell=bash
# The openBIS analysis templates: copied into ~/templates on the first start, and files
# added by an image upgrade on later starts. A file already there is never overwritten, so
# the user's edits survive (cp --no-clobber).
mkdir -p "$HOME/templates" && cp -R --no-clobber /opt/notebook_templates/. "$HOME/templates/"

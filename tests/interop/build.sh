#!/bin/sh
# Builds one interop peer with Debian's Go and Debian's Go sources, offline:
# GOPATH mode over /usr/share/gocode (golang-google-grpc-dev,
# golang-github-hashicorp-yamux-dev and their dependencies), no module
# downloads.
#
# usage: build.sh SOURCE_DIR WORK_DIR PACKAGE OUTPUT
#   SOURCE_DIR  tests/interop (holds wire/, goclient/, gonode/, yamuxpeer/)
#   WORK_DIR    a directory of the build tree for the GOPATH link and Go's cache
#   PACKAGE     goclient, gonode or yamuxpeer
set -eu
src=$1 work=$2 pkg=$3 out=$4
mkdir -p "$work/gopath/src"
ln -sfn "$src" "$work/gopath/src/interop"
export GO111MODULE=off GOPATH="$work/gopath:/usr/share/gocode" GOCACHE="$work/gocache" \
  GOPROXY=off GOFLAGS= CGO_ENABLED=0
exec go build -o "$out" "interop/$pkg"

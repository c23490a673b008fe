#!/bin/sh
# One-shot, run by the temporal-setup service in temporalio/admin-tools (busybox
# sh and the temporal CLI): waits until the cluster is SERVING, creates
# $TEMPORAL_NAMESPACE if missing and registers each search attribute given as
# a NAME=Type argument unless it exists. Safe to re-run. An attribute that
# exists with another type is an error: it cannot be changed in place.
set -eu

addr=${TEMPORAL_ADDRESS:?}
ns=${TEMPORAL_NAMESPACE:?}

# retry CMD...: up to 60 tries 2 s apart. A new namespace reaches the
# frontend's cache only after a few seconds, so the first tries may fail.
retry() {
	n=1
	until "$@"; do
		if [ "$n" -ge 60 ]; then
			echo "temporal-setup: gave up after $n tries: $*" >&2
			return 1
		fi
		n=$((n + 1))
		sleep 2
	done
}

lower() { printf '%s' "$1" | tr '[:upper:]' '[:lower:]'; }

ensure_namespace() {
	if temporal operator namespace describe --address "$addr" --namespace "$ns" >/dev/null 2>&1; then
		echo "temporal-setup: namespace $ns exists"
		return 0
	fi
	temporal operator namespace create --address "$addr" --namespace "$ns"
}

ensure_search_attribute() {
	name=$1
	type=$2
	list=$(temporal operator search-attribute list --address "$addr" --namespace "$ns") || return 1
	have=$(printf '%s\n' "$list" | awk -v n="$name" '$1 == n { print $2; exit }')
	if [ -z "$have" ]; then
		temporal operator search-attribute create --address "$addr" --namespace "$ns" --name "$name" --type "$type" || return 1
		echo "temporal-setup: created search attribute $name ($type)"
	elif [ "$(lower "$have")" = "$(lower "$type")" ]; then
		echo "temporal-setup: search attribute $name ($type) exists"
	else
		echo "temporal-setup: search attribute $name exists as $have, not $type; remove it or use another name" >&2
		exit 1
	fi
}

retry temporal operator cluster health --address "$addr"
retry ensure_namespace
for spec in "$@"; do
	case $spec in
	*=*) retry ensure_search_attribute "${spec%%=*}" "${spec#*=}" ;;
	*)
		echo "temporal-setup: want NAME=Type, got $spec" >&2
		exit 2
		;;
	esac
done
echo "temporal-setup: done"

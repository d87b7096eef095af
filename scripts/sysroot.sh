#!/usr/bin/env bash
# Builds a Debian trixie riscv64 sysroot of real Debian binaries for shoal's tests.
#
#   scripts/sysroot.sh [DEST]
#
# DEST defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/shoal/sysroot-trixie-riscv64. The script prints
# DEST on stdout when done; progress goes to stderr. Use it as `qemu-riscv64 -L DEST ...` or
# `shoal run -L DEST ...`.
#
# How it works:
#   * The archive URI(s) come from this machine's own apt configuration (deb822 `URIs:` in
#     /etc/apt/sources.list.d/*.sources and one-line entries in /etc/apt/sources.list[.d/*.list]),
#     taking the entries for Debian's main archive (not -security). SHOAL_APT_URIS (space separated)
#     overrides them.
#   * apt-get runs with its own state, cache and sources (suite `trixie`, architecture riscv64)
#     under the cache directory, so the host's apt state is never read or changed. apt resolves the
#     dependency closure of $PACKAGES and downloads the .debs, checking them against the signed
#     InRelease file.
#   * Trust: the Release file must be signed by a key in the machine's debian-archive-keyring. If
#     that keyring lacks trixie's keys, the host's own apt (verified by the host's trusted keys)
#     downloads the current debian-archive-keyring package, which is used instead.
#   * Every .deb is unpacked with dpkg-deb into a fresh tree laid out merged-/usr (bin, sbin, lib,
#     lib64 are symlinks into usr/ as on Debian), so that PT_INTERP /lib/ld-linux-riscv64-lp64d.so.1
#     resolves inside DEST. Maintainer scripts are not run.
#   * A stamp file in DEST records a hash of this script and the package list; when it matches,
#     the script exits at once. The downloaded .debs stay in the cache for later rebuilds.
#
# Environment: SHOAL_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/shoal) holds the apt state
# and .deb cache; SHOAL_APT_URIS overrides the archive URIs.
set -euo pipefail

SUITE=trixie
ARCH=riscv64
PACKAGES=(busybox-static lua5.4 sqlite3 coreutils)
# Files that must exist for the tree to count as complete.
REQUIRED=(usr/bin/busybox usr/bin/lua5.4 usr/bin/sqlite3 usr/bin/ls lib/ld-linux-riscv64-lp64d.so.1)

CACHE_ROOT=${SHOAL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shoal}
DEST=${1:-$CACHE_ROOT/sysroot-$SUITE-$ARCH}
WORK=$CACHE_ROOT/apt-$SUITE-$ARCH
STAMP_NAME=.shoal-sysroot-stamp

log() { printf 'sysroot: %s\n' "$*" >&2; }
die() {
    printf 'sysroot: error: %s\n' "$*" >&2
    exit 1
}

# The stamp key changes whenever this script or the package list changes.
stamp_key() {
    { sha256sum <"${BASH_SOURCE[0]}"; printf '%s\n' "$SUITE" "$ARCH" "${PACKAGES[@]}"; } |
        sha256sum | cut -d' ' -f1
}

is_complete() {
    [[ -f $DEST/$STAMP_NAME && $(<"$DEST/$STAMP_NAME") == "$1" ]] || return 1
    local f
    for f in "${REQUIRED[@]}"; do
        [[ -e $DEST/$f ]] || return 1
    done
}

KEY=$(stamp_key)
if is_complete "$KEY"; then
    printf '%s\n' "$DEST"
    exit 0
fi

for tool in apt-get dpkg-deb gpg tar sha256sum; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

# Prints the URIs of the Debian main archive from the host's apt configuration.
host_archive_uris() {
    local f
    # A suite counts as Debian's main archive when it is a release name or alias, optionally
    # with -updates; -security, -backports and third-party suites are skipped.
    local release='^(bookworm|trixie|forky|bullseye|buster|sid|stable|testing|unstable|oldstable)(-updates)?$'
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        # deb822: paragraphs separated by blank lines; fields Types, URIs, Suites, Enabled.
        awk -v release="$release" '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && enabled != "no") {
                    n = split(suites, s, " ")
                    ok = 0
                    for (i = 1; i <= n; i++) if (s[i] ~ release) ok = 1
                    if (ok) { m = split(uris, u, " "); for (i = 1; i <= m; i++) print u[i] }
                }
                types = ""; uris = ""; suites = ""; enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            {
                line = $0
                field = tolower(line); sub(/:.*/, "", field)
                value = line; sub(/^[^:]*:[ \t]*/, "", value)
                if (field == "types") types = value
                else if (field == "uris") uris = value
                else if (field == "suites") suites = value
                else if (field == "enabled") enabled = tolower(value)
            }
            END { flush() }
        ' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        # One-line format: deb [options] URI suite component...
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
            awk -v release="$release" '$1 == "deb" && $3 ~ release { print $2 }'
    done
}

# Prints a keyring file that holds trixie's archive signing keys.
trixie_keyring() {
    local ring=/usr/share/keyrings/debian-archive-keyring.gpg
    if [[ -f $ring ]] && gpg --show-keys "$ring" 2>/dev/null | grep -q '(13/trixie)'; then
        printf '%s\n' "$ring"
        return
    fi
    log "$ring lacks trixie's keys; fetching debian-archive-keyring through the host's apt"
    local dir=$WORK/keyring
    rm -rf "$dir"
    mkdir -p "$dir"
    # apt-get download verifies the package against the host's own trusted archive keys.
    (cd "$dir" && apt-get -q -o APT::Sandbox::User=root download debian-archive-keyring >&2) ||
        die "could not download debian-archive-keyring with the host's apt"
    dpkg-deb -x "$dir"/debian-archive-keyring_*.deb "$dir/root"
    ring=$dir/root/usr/share/keyrings/debian-archive-keyring.gpg
    gpg --show-keys "$ring" 2>/dev/null | grep -q '(13/trixie)' ||
        die "no keyring with trixie's signing keys is available; install a newer debian-archive-keyring"
    printf '%s\n' "$ring"
}

if [[ -n ${SHOAL_APT_URIS:-} ]]; then
    read -r -a URIS <<<"$SHOAL_APT_URIS"
else
    mapfile -t URIS < <(host_archive_uris | awk '!seen[$0]++')
fi
((${#URIS[@]} > 0)) || die "no Debian archive URI found in the host's apt configuration; set SHOAL_APT_URIS"
KEYRING=$(trixie_keyring)

mkdir -p "$WORK"/{state/lists/partial,archives/partial,cache,etc/sources.list.d,etc/preferences.d,log}
: >"$WORK/state/status"
{
    printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' \
        "${URIS[*]}" "$SUITE" "$KEYRING"
} >"$WORK/etc/sources.list.d/$SUITE.sources"

APT=(
    apt-get -q
    -o "Dir::State=$WORK/state"
    -o "Dir::State::status=$WORK/state/status"
    -o "Dir::Cache=$WORK/cache"
    -o "Dir::Cache::archives=$WORK/archives"
    -o "Dir::Etc::SourceList=/dev/null"
    -o "Dir::Etc::SourceParts=$WORK/etc/sources.list.d"
    -o "Dir::Etc::Preferences=/dev/null"
    -o "Dir::Etc::PreferencesParts=$WORK/etc/preferences.d"
    -o "Dir::Log=$WORK/log"
    -o "APT::Architecture=$ARCH"
    -o "APT::Architectures=$ARCH"
    -o "APT::Install-Recommends=false"
    -o "APT::Install-Suggests=false"
    -o "APT::Sandbox::User=root"
    -o "Acquire::Languages=none"
    -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
    -o "APT::Update::Post-Invoke-Success::="
    -o "APT::Update::Post-Invoke::="
    -o "Debug::NoLocking=true"
)

log "updating package lists for $SUITE/$ARCH (${#URIS[@]} archive URI(s) from the host's apt configuration)"
"${APT[@]}" update >&2

# apt resolves the closure against an empty status file, so every dependency is listed.
log "resolving ${PACKAGES[*]}"
mapfile -t CLOSURE < <("${APT[@]}" -s install "${PACKAGES[@]}" |
    awk '$1 == "Inst" { v = $3; sub(/^\(/, "", v); print $2 " " v }' | sort)
((${#CLOSURE[@]} > 0)) || die "apt resolved no packages"

log "downloading ${#CLOSURE[@]} packages into $WORK/archives"
"${APT[@]}" -y --download-only install "${PACKAGES[@]}" >&2

# Unpack into a fresh tree beside DEST, then swap it in, so an interrupted run never leaves a
# half-built DEST behind a valid stamp.
if [[ -e $DEST && ! -f $DEST/$STAMP_NAME ]] && [[ -n $(ls -A "$DEST" 2>/dev/null) ]]; then
    die "$DEST exists, is not empty and was not built by this script; refusing to replace it"
fi
mkdir -p "$(dirname "$DEST")"
NEW=$(mktemp -d "$DEST.new.XXXXXX")
trap 'rm -rf "$NEW"' EXIT

# Debian's merged-/usr layout: the top-level directories are symlinks into usr/.
mkdir -p "$NEW"/usr/{bin,sbin,lib,lib64}
for d in bin sbin lib lib64; do
    ln -s "usr/$d" "$NEW/$d"
done

for entry in "${CLOSURE[@]}"; do
    read -r name version <<<"$entry"
    # apt names archives NAME_VERSION_ARCH.deb with ':' in the version escaped as %3a.
    deb=$(compgen -G "$WORK/archives/${name}_${version//:/%3a}_*.deb" | head -n1) ||
        die "no downloaded archive for $name $version"
    log "unpacking $name $version"
    # --keep-directory-symlink keeps bin/lib/... symlinks if a package still ships files there.
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$NEW" --keep-directory-symlink --no-same-owner
done

# Drop usr/lib64 again if no package used it, leaving no dangling lib64 link.
if [[ -z $(ls -A "$NEW/usr/lib64") ]]; then
    rmdir "$NEW/usr/lib64"
    rm "$NEW/lib64"
fi

printf '%s\n' "${CLOSURE[@]}" >"$NEW/.shoal-sysroot-packages"
for f in "${REQUIRED[@]}"; do
    [[ -e $NEW/$f ]] || die "the unpacked tree lacks $f"
done
printf '%s\n' "$KEY" >"$NEW/$STAMP_NAME"

rm -rf "$DEST"
mv "$NEW" "$DEST"
chmod 755 "$DEST"
trap - EXIT
log "built $DEST: ${#CLOSURE[@]} packages, $(du -sh "$DEST" | cut -f1)"
printf '%s\n' "$DEST"

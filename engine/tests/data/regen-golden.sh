#!/bin/sh
# Regenerates decode.golden from GNU objdump's disassembly of rv64gc.S and illegal.S.
#
# Each instruction becomes one line `<pc>: <encoding>  <text>`, where <text> is objdump's
# instruction column with the tab after the mnemonic turned into a space and with objdump's
# annotations removed: the `<symbol+offset>` after branch targets and the `# value` comments it
# adds after instructions whose result it can compute. Every encoding in illegal.S is expected to
# be illegal and gets the text `illegal`; the ones objdump nevertheless decodes are reported.
#
# Usage: engine/tests/data/regen-golden.sh   (needs riscv64-linux-gnu-as and -objdump)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
as=${AS:-riscv64-linux-gnu-as}
objdump=${OBJDUMP:-riscv64-linux-gnu-objdump}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Prints `<pc>: <encoding>  <text>` for every instruction in $1.S.
disassemble() {
    "$as" -march=rv64gc -o "$tmp/$1.o" "$here/$1.S"
    "$objdump" -d -M no-aliases,numeric "$tmp/$1.o" | awk -F '\t' '
        /^ *[0-9a-f]+:\t/ {
            pc = $1; sub(/^ +/, "", pc)
            encoding = $2; sub(/ +$/, "", encoding)
            text = $3
            if (NF >= 4) text = text " " $4
            sub(/ #.*$/, "", text)
            sub(/ <[^>]*>$/, "", text)
            print pc " " encoding "  " text
        }'
}

{
    echo "# Golden disassembly for the RV64GC decoder (engine/tests/decode_golden.rs)."
    echo "#"
    echo "# Each line is \`<pc>: <encoding>  <text>\`: the encoding in hex as objdump prints it"
    echo "# (4 digits for compressed), assembled at <pc>, and the text"
    echo "# \`riscv64-linux-gnu-objdump -d -M no-aliases,numeric\` prints for it. Generated from"
    echo "# rv64gc.S and illegal.S by regen-golden.sh; BLESS=1 cargo test rewrites the texts from"
    echo "# our own disassembler instead."
    echo
    echo "# rv64gc.S: every instruction form."
    disassemble rv64gc
    echo
    echo "# illegal.S: reserved and undefined encodings, all of which must decode as illegal."
    disassemble illegal | while read -r pc encoding text; do
        case $text in
            .2byte* | .4byte* | .word* | .short* | c.unimp) ;;
            *) echo "note: objdump decodes reserved $encoding as '$text'" >&2 ;;
        esac
        echo "$pc $encoding  illegal"
    done
} >"$here/decode.golden"

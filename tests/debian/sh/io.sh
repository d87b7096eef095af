# Here-documents, redirections, subshells and files in a temporary directory.
dir=$(mktemp -d)
cd "$dir" || exit 1
name=world
head -n 100 <<EOT
hello, $name
sum: $((20 + 22))
EOT
head -n 100 <<'EOT'
literal $name $((1 + 1))
EOT
printf 'one\ntwo\nthree\n' >lines.txt
echo four >>lines.txt
awk 'END { print NR }' <lines.txt
{ echo stdout; echo stderr >&2; } 2>err.txt >out.txt
read -r out <out.txt
read -r err <err.txt
echo "out: $out err: $err"
exec 3>fd3.txt
echo "via fd 3" >&3
exec 3>&-
head fd3.txt
(cd / && pwd)
echo "still in temp dir: $([ "$PWD" = "$dir" ] && echo yes)"
x=outer
(x=inner; echo "subshell sees $x")
echo "parent sees $x"
mkdir -p a/b/c
touch a/one a/b/two a/b/c/three
echo data >a/b/c/three
find a | sort
ls a/b
cp a/b/c/three copy.txt
mv copy.txt moved.txt
ls
head moved.txt
rm -r a
ls
ln -s moved.txt link.txt
readlink link.txt
[ -L link.txt ] && echo "link ok"
chmod 600 moved.txt
stat -c '%a %s %n' moved.txt
while IFS=: read -r key value; do
    echo "key=$key value=$value"
done <<EOT
alpha:1
beta:2
gamma:3
EOT
awk '/o/ { print NR ":" $0 }' lines.txt
awk 'NR >= 2 && NR <= 3' lines.txt
tac lines.txt | head -n 2
hexdump -C fd3.txt
xxd -p fd3.txt
dd if=lines.txt bs=1 skip=4 count=3 2>/dev/null
echo
sha256sum lines.txt moved.txt
md5sum lines.txt
basename "$dir/lines.txt" .txt
dirname a/b/c/three
cd / && rm -rf "$dir"
[ -d "$dir" ] || echo "temp dir removed"

#!/bin/busybox sh
# PID 1 of the vm-test guest (written by `cargo xtask vm-test`; see vm_test.rs).
#
# Stage 1 runs on the initramfs, where pivot_root(2) cannot work: it copies everything to a
# tmpfs and switch_roots into it. Stage 2 sets up a pure cgroup-v2 system, loads the modules,
# mounts the host's workspace over 9p at the host's path, runs every test binary there, writes
# the results to the second serial port (ttyS1), and leaves through isa-debug-exit: 0 when
# every binary passed, 1 otherwise (2: no workspace or rootfs).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp

# Leave qemu with status $1 (qemu exits with 2 * $1 + 1).
vm_exit() {
	printf "\\$(printf %03o "$1")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
	echo "vm-test: isa-debug-exit did not stop the VM; powering off"
	poweroff -f
}

if [ "$1" != stage2 ]; then
	/bin/busybox mkdir -p /usr/bin /usr/sbin /sbin
	/bin/busybox --install -s
	mkdir -p /newroot
	mount -t tmpfs -o mode=0755 root /newroot
	for entry in /*; do
		case "$entry" in
		/newroot | /proc | /sys | /dev) ;;
		*) cp -a "$entry" /newroot/ ;;
		esac
	done
	mkdir -p /newroot/proc /newroot/sys /newroot/dev
	exec switch_root /newroot /init stage2
fi

mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t devtmpfs -o nosuid devtmpfs /dev
if grep -qw boxr.smoke /proc/cmdline; then
	vm_exit 0
fi
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
for controller in $(cat /sys/fs/cgroup/cgroup.controllers); do
	echo "+$controller" >/sys/fs/cgroup/cgroup.subtree_control
done
mkdir -p /dev/pts /dev/shm /tmp /run
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o nosuid,nodev shm /dev/shm
mount -t tmpfs -o nosuid,nodev tmp /tmp
chmod 1777 /tmp /dev/shm
hostname vm-test
ip link set lo up
# Accounts, for the rootless tests' useradd (and subordinate id ranges for its users).
printf 'root:x:0:0:root:/root:/bin/sh\n' >/etc/passwd
printf 'root:x:0:\n' >/etc/group
: >/etc/subuid
: >/etc/subgid

while read -r module; do
	insmod "/lib/modules/$module.ko" || echo "vm-test: cannot load module $module"
done </vm-test/modules
# Like a host's network: an address and routes (qemu's user-mode network; restricted to the VM).
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2

share=$(cat /vm-test/share)
mkdir -p "$share"
if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 boxr "$share"; then
	echo "vm-test: cannot mount the host's $share over 9p"
	vm_exit 2
fi
# The busybox rootfs, an ext4 image on the first disk, at the host's path.
for _ in $(seq 50); do
	[ -b /dev/vda ] && break
	sleep 0.1
done
if ! mount -t ext4 /dev/vda "$(cat /vm-test/rootfs-at)"; then
	echo "vm-test: cannot mount the rootfs image"
	vm_exit 2
fi

echo "vm-test: $(uname -r), cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
set --
while IFS= read -r arg; do
	set -- "$@" "$arg"
done </vm-test/args
stty -F /dev/ttyS1 raw -echo
results=/dev/ttyS1
status=0
cd "$share"
while read -r name binary; do
	echo "vm-test: running $name"
	echo "@boxr-vm binary $name" >"$results"
	"$binary" "$@" >/tmp/test-output 2>&1
	code=$?
	cat /tmp/test-output >"$results"
	echo "@boxr-vm exit $name $code" >"$results"
	grep '^test result:' /tmp/test-output || echo "vm-test: $name exited with status $code"
	[ "$code" = 0 ] || status=1
done </vm-test/tests
echo "@boxr-vm done" >"$results"
vm_exit "$status"

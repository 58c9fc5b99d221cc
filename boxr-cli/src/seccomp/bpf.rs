//! The classic BPF code generator: a checked profile's rules as a seccomp filter program.
//!
//! The program checks the architecture (x86_64 only, no x32), then looks the syscall number up:
//! the syscalls that get an action whatever their arguments first, one `jeq` each, in runs that
//! share one `ret`; then each syscall with argument rules, as a block that tries its rules in
//! order and ends in the syscall's own fallback action; the profile's default last. Every block
//! ends in a `ret`, so a block that loads an argument never leaves it in A for the next test.
//! Jumps go to labels: a conditional jump whose target is too far for its 8-bit offset goes
//! through a `ja` (32-bit offset).

use super::{Action, Condition, Instruction, Op};

pub const LD_W_ABS: u16 = 0x20;
pub const JA: u16 = 0x05;
pub const JEQ_K: u16 = 0x15;
pub const JGT_K: u16 = 0x25;
pub const JGE_K: u16 = 0x35;
pub const AND_K: u16 = 0x54;
pub const RET_K: u16 = 0x06;

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `__X32_SYSCALL_BIT`.
pub const X32_BIT: u32 = 0x4000_0000;
/// Offsets in `struct seccomp_data`: the number, the architecture, the arguments (8 bytes each,
/// low word first).
pub const NR: u32 = 0;
pub const ARCH: u32 = 4;
pub const ARGS: u32 = 16;

/// The kernel's limit on a filter's length (`BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// A syscall whose action depends on its arguments: `rules` (conditions all true → action)
/// tried in order, then `fallback`.
pub struct Block {
    pub nr: u32,
    pub rules: Vec<(Vec<Condition>, Action)>,
    pub fallback: Action,
}

/// The program: `simple` syscalls (number, action) by number, then the `blocks`, then
/// `default`. Syscalls of another architecture and x32 ones fail with `EPERM`.
pub fn generate(simple: &[(u32, Action)], blocks: &[Block], default: Action) -> Vec<Instruction> {
    let mut a = Asm::default();
    let eperm = Action::Errno(1).ret();
    let arch_ok = a.label();
    a.stmt(LD_W_ABS, ARCH);
    a.jump(JEQ_K, AUDIT_ARCH_X86_64, Some(arch_ok), None);
    a.stmt(RET_K, eperm);
    a.bind(arch_ok);
    a.stmt(LD_W_ABS, NR);
    let native = a.label();
    a.jump(JGE_K, X32_BIT, None, Some(native));
    a.stmt(RET_K, eperm);
    a.bind(native);
    // Runs of at most 255 syscalls with one action, so that each jeq reaches the run's ret.
    for run in simple.chunk_by(|x, y| x.1 == y.1) {
        for chunk in run.chunks(255) {
            let (ret, after) = (a.label(), a.label());
            for &(nr, _) in chunk {
                a.jump(JEQ_K, nr, Some(ret), None);
            }
            a.ja(after);
            a.bind(ret);
            a.stmt(RET_K, chunk[0].1.ret());
            a.bind(after);
        }
    }
    for block in blocks {
        let next = a.label();
        a.jump(JEQ_K, block.nr, None, Some(next));
        for (conditions, action) in &block.rules {
            let fail = a.label();
            for c in conditions {
                condition(&mut a, c, fail);
            }
            a.stmt(RET_K, action.ret());
            a.bind(fail);
        }
        a.stmt(RET_K, block.fallback.ret());
        a.bind(next);
    }
    a.stmt(RET_K, default.ret());
    a.assemble()
}

/// Code that falls through when `c` holds and jumps to `fail` when it does not, comparing the
/// high words first (unsigned 64-bit comparisons).
fn condition(a: &mut Asm, c: &Condition, fail: Label) {
    let low = ARGS + 8 * u32::from(c.index);
    let high = low + 4;
    let split = |v: u64| ((v >> 32) as u32, v as u32);
    let (vh, vl) = split(c.value);
    let holds = a.label();
    match c.op {
        Op::Eq => {
            a.stmt(LD_W_ABS, high);
            a.jump(JEQ_K, vh, None, Some(fail));
            a.stmt(LD_W_ABS, low);
            a.jump(JEQ_K, vl, None, Some(fail));
        }
        Op::Ne => {
            a.stmt(LD_W_ABS, high);
            a.jump(JEQ_K, vh, None, Some(holds));
            a.stmt(LD_W_ABS, low);
            a.jump(JEQ_K, vl, Some(fail), None);
        }
        Op::Gt | Op::Ge => {
            a.stmt(LD_W_ABS, high);
            a.jump(JGT_K, vh, Some(holds), None);
            a.jump(JEQ_K, vh, None, Some(fail));
            a.stmt(LD_W_ABS, low);
            a.jump(if c.op == Op::Gt { JGT_K } else { JGE_K }, vl, None, Some(fail));
        }
        // arg < v is !(arg >= v), arg <= v is !(arg > v).
        Op::Lt | Op::Le => {
            a.stmt(LD_W_ABS, high);
            a.jump(JGT_K, vh, Some(fail), None);
            a.jump(JEQ_K, vh, None, Some(holds));
            a.stmt(LD_W_ABS, low);
            a.jump(if c.op == Op::Lt { JGE_K } else { JGT_K }, vl, Some(fail), None);
        }
        Op::MaskedEq => {
            let (mh, ml) = (vh, vl);
            let (eh, el) = split(c.value_two);
            a.stmt(LD_W_ABS, high);
            a.stmt(AND_K, mh);
            a.jump(JEQ_K, eh, None, Some(fail));
            a.stmt(LD_W_ABS, low);
            a.stmt(AND_K, ml);
            a.jump(JEQ_K, el, None, Some(fail));
        }
    }
    a.bind(holds);
}

#[derive(Clone, Copy)]
struct Label(usize);

enum Item {
    Stmt(u16, u32),
    /// A conditional jump; `None` targets are the next instruction. `far_*`: through a `ja`.
    Jump {
        code: u16,
        k: u32,
        t: Option<Label>,
        f: Option<Label>,
        far_t: bool,
        far_f: bool,
    },
    Ja(Label),
    Bind(Label),
}

impl Item {
    fn len(&self) -> usize {
        match self {
            Item::Stmt(..) | Item::Ja(_) => 1,
            Item::Jump { far_t, far_f, .. } => 1 + usize::from(*far_t) + usize::from(*far_f),
            Item::Bind(_) => 0,
        }
    }
}

/// Instructions with forward jumps to labels, laid out once every offset fits.
#[derive(Default)]
struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }
    fn bind(&mut self, l: Label) {
        self.items.push(Item::Bind(l));
    }
    fn stmt(&mut self, code: u16, k: u32) {
        self.items.push(Item::Stmt(code, k));
    }
    fn jump(&mut self, code: u16, k: u32, t: Option<Label>, f: Option<Label>) {
        self.items.push(Item::Jump { code, k, t, f, far_t: false, far_f: false });
    }
    fn ja(&mut self, l: Label) {
        self.items.push(Item::Ja(l));
    }

    /// The position of each item and of each label.
    fn layout(&self) -> (Vec<usize>, Vec<usize>) {
        let (mut at, mut labels) = (Vec::with_capacity(self.items.len()), vec![0; self.labels]);
        let mut pc = 0;
        for item in &self.items {
            at.push(pc);
            if let Item::Bind(l) = item {
                labels[l.0] = pc;
            }
            pc += item.len();
        }
        (at, labels)
    }

    fn assemble(mut self) -> Vec<Instruction> {
        // Jumps only become far, so this ends; then every near offset fits.
        let (at, labels) = loop {
            let (at, labels) = self.layout();
            let mut changed = false;
            for (item, &pc) in self.items.iter_mut().zip(&at) {
                if let Item::Jump { t, f, far_t, far_f, .. } = item {
                    let too_far = |l: &Option<Label>| l.is_some_and(|l| labels[l.0] - pc - 1 > 255);
                    if (too_far(t) && !*far_t) || (too_far(f) && !*far_f) {
                        *far_t |= too_far(t);
                        *far_f |= too_far(f);
                        changed = true;
                    }
                }
            }
            if !changed {
                break (at, labels);
            }
        };
        let mut out = Vec::new();
        for (item, &pc) in self.items.iter().zip(&at) {
            let next = pc + item.len();
            let to = |l: &Option<Label>| l.map_or(next, |l| labels[l.0]);
            let offset = |from: usize, to: usize| to - from - 1;
            match item {
                Item::Stmt(code, k) => out.push((*code, 0, 0, *k)),
                Item::Ja(l) => out.push((JA, 0, 0, offset(pc, labels[l.0]) as u32)),
                Item::Bind(_) => {}
                &Item::Jump { code, k, ref t, ref f, far_t, far_f } => {
                    // Layout: the jump, then `ja t` if far_t, then `ja f` if far_f.
                    let ja_t = pc + 1;
                    let ja_f = ja_t + usize::from(far_t);
                    let jt = if far_t { ja_t } else { to(t) };
                    let jf = if far_f { ja_f } else { to(f) };
                    // Near targets fit (the loop above), ja targets are the next ones.
                    out.push((code, offset(pc, jt) as u8, offset(pc, jf) as u8, k));
                    if far_t {
                        out.push((JA, 0, 0, offset(ja_t, to(t)) as u32));
                    }
                    if far_f {
                        out.push((JA, 0, 0, offset(ja_f, to(f)) as u32));
                    }
                }
            }
        }
        out
    }
}

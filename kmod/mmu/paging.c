// SPDX-License-Identifier: GPL-2.0
/*
 * The guest page walker: 2-level (32-bit) paging with 4 KiB and PSE 4 MiB
 * pages, legacy PAE paging with 2 MiB pages, and 4-level paging with 2 MiB
 * and 1 GiB pages. Pure code: see paging.h.
 *
 * The three formats differ in entry size (4 or 8 bytes), bits of the
 * address per level (10 or 9), how the top level is found (PAE: four
 * PDPTEs the CPU keeps in registers, which grant no permissions and get
 * no A bit), where a large page's address bits are (PSE-36 puts bits
 * 39:32 of a 4 MiB page in 20:13), and which bits are reserved.
 */
#include "paging.h"

struct format {
	int levels;		/* the top level's number */
	int entry_size;		/* bytes */
	int bits;		/* address bits translated per level */
};

static const struct format formats[] = {
	[KL_PAGING_2LEVEL] = { .levels = 2, .entry_size = 4, .bits = 10 },
	[KL_PAGING_PAE] = { .levels = 3, .entry_size = 8, .bits = 9 },
	[KL_PAGING_4LEVEL] = { .levels = 4, .entry_size = 8, .bits = 9 },
};

enum kl_paging_format kl_paging_format(const struct kl_paging *p)
{
	if (!(p->cr0 & KL_CR0_PG))
		return KL_PAGING_OFF;
	if (p->efer & KL_EFER_LMA)
		return KL_PAGING_4LEVEL;
	return p->cr4 & KL_CR4_PAE ? KL_PAGING_PAE : KL_PAGING_2LEVEL;
}

/* MAXPHYADDR comes from a CPUID table userspace set: keep it where the masks make sense. */
static int phys_bits(const struct kl_paging *p)
{
	return p->maxphyaddr < 32 ? 32 : p->maxphyaddr > 52 ? 52 : p->maxphyaddr;
}

static u64 entry_gpa(const struct format *f, u64 table, u64 gva, int level)
{
	u64 index = gva >> (12 + f->bits * (level - 1));

	return table + (index & ((1ULL << f->bits) - 1)) * f->entry_size;
}

/* Where the PDPT is: 32-byte aligned, below 4 GiB. */
static u64 pdpt_base(const struct kl_paging *p)
{
	return p->cr3 & 0xffffffe0ULL;
}

static bool nx_allowed(const struct kl_paging *p, enum kl_paging_format fmt)
{
	return fmt != KL_PAGING_2LEVEL && (p->efer & KL_EFER_NX);
}

/* Is this entry a large page (and so the walk's last)? */
static bool is_large(const struct kl_paging *p, enum kl_paging_format fmt, int level, u64 pte)
{
	if (!(pte & KL_PT_PS) || level == 1)
		return false;
	switch (fmt) {
	case KL_PAGING_2LEVEL: return p->cr4 & KL_CR4_PSE;	/* PS is ignored without PSE */
	case KL_PAGING_PAE: return level == 2;			/* PDPTEs have no PS */
	default: return level < 4;				/* no 512 GiB pages */
	}
}

/* Reserved bits of an entry at `level` of format fmt. */
static u64 reserved_bits(const struct kl_paging *p, enum kl_paging_format fmt, int level,
			 bool large)
{
	/* LAB 2 BEGIN: the bits that must be zero in this entry (else #PF with RSVD) */
	u64 rsvd;

	if (fmt == KL_PAGING_2LEVEL) {
		int m = phys_bits(p);

		/* Only a 4 MiB page has any: bit 21, and PSE-36 bits at MAXPHYADDR and above. */
		if (!large)
			return 0;
		return BIT_ULL(21) | (m >= 40 ? 0 : GENMASK_ULL(20, 13 + m - 32));
	}
	/*
	 * A PDPTE's reserved bits are checked when the CPU loads it (#GP at
	 * the CR3 write: x86.c), never on a walk; QEMU's CPU even sets bit 5.
	 */
	if (fmt == KL_PAGING_PAE && level == 3)
		return 0;
	rsvd = GENMASK_ULL(fmt == KL_PAGING_PAE ? 62 : 51, phys_bits(p));
	if (!nx_allowed(p, fmt))
		rsvd |= KL_PT_NX;
	if (fmt == KL_PAGING_4LEVEL && level == 4)
		rsvd |= KL_PT_PS;		/* no pages larger than 1 GiB */
	if (large && level == 2)
		rsvd |= GENMASK_ULL(20, 13);
	if (large && level == 3)
		rsvd |= GENMASK_ULL(29, 13);
	return rsvd;
	/* LAB 2 STUB
	(void)p; (void)fmt; (void)level; (void)large; (void)phys_bits;
	return 0;
	   LAB 2 END */
}

/* The frame an entry points to (a table's, or a large page's base). */
static u64 entry_frame(enum kl_paging_format fmt, u64 pte, int level, bool large)
{
	if (fmt == KL_PAGING_2LEVEL && large)	/* PSE-36: bits 20:13 hold 39:32 */
		return (pte & 0xffc00000ULL) | ((pte & GENMASK_ULL(20, 13)) << 19);
	if (fmt == KL_PAGING_2LEVEL)
		return pte & 0xfffff000ULL;
	if (large)
		return pte & KL_PT_ADDR & ~((1ULL << (12 + 9 * (level - 1))) - 1);
	return pte & KL_PT_ADDR;
}

/* The top-level entry: a PDPTE (registers or memory), or from the table at CR3. */
static int read_top(const struct kl_paging *p, const struct kl_guest_mem *m,
		    enum kl_paging_format fmt, u64 gva, u64 *table, u64 *pte_gpa, u64 *pte)
{
	const struct format *f = &formats[fmt];

	*table = fmt == KL_PAGING_PAE ? pdpt_base(p) : p->cr3 & (fmt == KL_PAGING_2LEVEL ?
								 0xfffff000ULL : KL_PT_ADDR);
	*pte_gpa = entry_gpa(f, *table, gva, f->levels);
	if (fmt == KL_PAGING_PAE && p->pdptes) {
		*pte = p->pdptes[(gva >> 30) & 3];
		return 0;
	}
	return m->read_pte(m->ctx, *pte_gpa, f->entry_size, pte) ? -ENOENT : 0;
}

static int walk_once(const struct kl_paging *p, const struct kl_guest_mem *m,
		     enum kl_paging_format fmt, u64 gva, u32 access, struct kl_walk *w)
{
	const struct format *f = &formats[fmt];
	bool user = access & KL_PF_U, write = access & KL_PF_W, fetch = access & KL_PF_ID;
	bool wp = p->cr0 & KL_CR0_WP, large = false;
	u64 table, pte = 0, pte_gpa = 0, frame, page_mask;
	int level = f->levels;

	w->top_level = f->levels;
	if (read_top(p, m, fmt, gva, &table, &pte_gpa, &pte))
		return -ENOENT;
	for (;;) {
		w->table[level] = table;
		w->entry[level] = pte;
		if (!(pte & KL_PT_P))
			goto fault;
		large = is_large(p, fmt, level, pte);
		if (pte & reserved_bits(p, fmt, level, large)) {
			w->error = KL_PF_P | KL_PF_RSVD;
			goto fault;
		}
		if (!(fmt == KL_PAGING_PAE && level == 3)) {	/* PDPTEs grant everything */
			w->writable &= !!(pte & KL_PT_W);
			w->user &= !!(pte & KL_PT_U);
			w->nx |= !!(pte & KL_PT_NX);
			w->accessed &= !!(pte & KL_PT_A);
		}
		if (large || level == 1)
			break;
		table = entry_frame(fmt, pte, level, false);
		level--;
		pte_gpa = entry_gpa(f, table, gva, level);
		if (m->read_pte(m->ctx, pte_gpa, f->entry_size, &pte))
			return -ENOENT;		/* table outside RAM */
	}

	w->level = level;
	w->pte = pte;
	w->pte_gpa = pte_gpa;
	w->error = KL_PF_P;
	/* LAB 2 BEGIN: may this access use the page? (U/S, R/W with CR0.WP, NX) */
	if (user && !w->user)
		goto fault;
	if (write && !w->writable && (user || wp))
		goto fault;
	if (fetch && w->nx && nx_allowed(p, fmt))
		goto fault;
	/* LAB 2 STUB
	(void)wp;
	if (user || write || fetch)
		goto fault;
	   LAB 2 END */
	frame = entry_frame(fmt, pte, level, large);
	page_mask = level == 1 ? 0xfffULL : (1ULL << (12 + f->bits * (level - 1))) - 1;
	w->page_size = page_mask + 1;
	w->gpa = frame | (gva & page_mask);
	return 0;

fault:
	/* LAB 1 BEGIN: the rest of the error code: what kind of access faulted */
	w->error |= (user ? KL_PF_U : 0) | (write ? KL_PF_W : 0);
	if (fetch && nx_allowed(p, fmt))
		w->error |= KL_PF_ID;
	/* LAB 1 STUB
	return -ENOSYS;
	   LAB 1 END */
	return -EFAULT;
}

/*
 * Accessed bits are set on every level the walk used (PDPTEs excepted:
 * they are registers), dirty on the leaf of a write, and only for a walk
 * that succeeds, as the CPU does. Setting them re-reads each entry: if the
 * guest changed it meanwhile, walk again.
 */
static int set_walk_ad(const struct kl_guest_mem *m, enum kl_paging_format fmt, u64 gva,
		       bool write, struct kl_walk *w)
{
	/* LAB 2 BEGIN: set A on every entry the walk used and D on a written leaf */
	const struct format *f = &formats[fmt];

	for (int level = fmt == KL_PAGING_PAE ? 2 : f->levels; level >= w->level; level--) {
		u64 gpa = entry_gpa(f, w->table[level], gva, level), pte, want;
		int r;

		if (m->read_pte(m->ctx, gpa, f->entry_size, &pte))
			return -ENOENT;
		if (pte != w->entry[level])
			return -EAGAIN;		/* changed since the walk: walk again */
		want = pte | KL_PT_A;
		if (level == w->level && write)
			want |= KL_PT_D;
		if (want != pte) {
			r = m->cmpxchg_pte(m->ctx, gpa, f->entry_size, pte, want);
			if (r)
				return r;
		}
		if (level == w->level)
			w->pte = want;
	}
	return 0;
	/* LAB 2 STUB
	(void)m; (void)fmt; (void)gva; (void)write; (void)w;
	return -ENOSYS;
	   LAB 2 END */
}

int kl_paging_walk(const struct kl_paging *p, const struct kl_guest_mem *m, u64 gva,
		   u32 access, bool set_ad, struct kl_walk *w)
{
	enum kl_paging_format fmt = kl_paging_format(p);

	if (fmt == KL_PAGING_4LEVEL && (s64)(gva << 16) >> 16 != (s64)gva)
		return -EINVAL;		/* non-canonical: the CPU raises #GP, not #PF */
	if (fmt == KL_PAGING_2LEVEL || fmt == KL_PAGING_PAE)
		gva &= 0xffffffffULL;
	for (int tries = 0; tries < 8; tries++) {
		int r;

		*w = (struct kl_walk) { .writable = true, .user = true, .accessed = true };
		if (fmt == KL_PAGING_OFF) {
			w->gpa = gva;
			w->level = 1;
			w->page_size = 4096;
			return 0;
		}
		r = walk_once(p, m, fmt, gva, access, w);
		if (r || !set_ad)
			return r;
		r = set_walk_ad(m, fmt, gva, access & KL_PF_W, w);
		if (r != -EAGAIN)
			return r;
	}
	return -EAGAIN;
}

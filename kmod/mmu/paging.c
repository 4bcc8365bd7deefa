// SPDX-License-Identifier: GPL-2.0
/*
 * The guest page walker (4-level paging, 4 KiB, 2 MiB and 1 GiB pages).
 * Pure code: see paging.h.
 */
#include "paging.h"

static bool paging_on(const struct kl_paging *p)
{
	return p->cr0 & KL_CR0_PG;
}

static int index_at(u64 gva, int level)
{
	return (gva >> (12 + 9 * (level - 1))) & 511;
}

/* Reserved bits of an entry at `level` (4 = PML4E), large or not. */
static u64 reserved_bits(const struct kl_paging *p, int level, bool large)
{
	u64 rsvd = GENMASK_ULL(51, p->maxphyaddr);

	if (!(p->efer & KL_EFER_NX))
		rsvd |= KL_PT_NX;
	if (level == 4)
		rsvd |= KL_PT_PS;		/* no pages larger than 1 GiB */
	if (large && level == 2)
		rsvd |= GENMASK_ULL(20, 13);
	if (large && level == 3)
		rsvd |= GENMASK_ULL(29, 13);
	return rsvd;
}

static int walk_once(const struct kl_paging *p, const struct kl_guest_mem *m, u64 gva,
		     u32 access, struct kl_walk *w)
{
	bool user = access & KL_PF_U, write = access & KL_PF_W, fetch = access & KL_PF_ID;
	bool wp = p->cr0 & KL_CR0_WP;
	u64 table = p->cr3 & KL_PT_ADDR, pte = 0, pte_gpa = 0, page_mask;
	int level;

	*w = (struct kl_walk) { .writable = true, .user = true, .nx = false, .accessed = true };
	if (!paging_on(p)) {
		w->gpa = gva;
		w->level = 1;
		return 0;
	}
	if (!(p->efer & KL_EFER_LMA))
		return -EOPNOTSUPP;	/* only 4-level paging is modelled */
	if ((s64)(gva << 16) >> 16 != (s64)gva)
		return -EINVAL;		/* non-canonical: the CPU raises #GP, not #PF */

	for (level = 4; level >= 1; level--) {
		bool large;

		pte_gpa = table + index_at(gva, level) * 8;
		if (m->read_pte(m->ctx, pte_gpa, &pte))
			return -ENOENT;		/* table outside RAM */
		w->table[level] = table;
		w->entry[level] = pte;
		if (!(pte & KL_PT_P))
			goto fault;
		large = level > 1 && level < 4 && (pte & KL_PT_PS);
		if (pte & reserved_bits(p, level, large)) {
			w->error = KL_PF_P | KL_PF_RSVD;
			goto fault;
		}
		w->writable &= !!(pte & KL_PT_W);
		w->user &= !!(pte & KL_PT_U);
		w->nx |= !!(pte & KL_PT_NX);
		w->accessed &= !!(pte & KL_PT_A);
		if (large || level == 1)
			break;
		table = pte & KL_PT_ADDR;
	}

	w->level = level;
	w->pte = pte;
	w->pte_gpa = pte_gpa;
	w->error = KL_PF_P;
	if (user && !w->user)
		goto fault;
	if (write && !w->writable && (user || wp))
		goto fault;
	if (fetch && w->nx && (p->efer & KL_EFER_NX))
		goto fault;
	page_mask = level == 1 ? KL_PT_ADDR :
		    ~((1ULL << (12 + 9 * (level - 1))) - 1) & KL_PT_ADDR;
	w->gpa = (pte & page_mask) | (gva & ~page_mask & ((1ULL << 52) - 1));
	return 0;

fault:
	w->error |= (user ? KL_PF_U : 0) | (write ? KL_PF_W : 0);
	if (fetch && (p->efer & KL_EFER_NX))
		w->error |= KL_PF_ID;
	return -EFAULT;
}

/*
 * Accessed bits are set on every level the walk used, dirty on the leaf of
 * a write, and only for a walk that succeeds, as the CPU does. Setting them
 * re-reads each entry: if the guest changed it meanwhile, walk again.
 */
static int set_walk_ad(const struct kl_paging *p, const struct kl_guest_mem *m, u64 gva,
		       bool write, struct kl_walk *w)
{
	u64 table = p->cr3 & KL_PT_ADDR;

	for (int level = 4; level >= w->level; level--) {
		u64 gpa = table + index_at(gva, level) * 8, pte, want;
		int r;

		if (m->read_pte(m->ctx, gpa, &pte))
			return -ENOENT;
		want = pte | KL_PT_A;
		if (level == w->level && write)
			want |= KL_PT_D;
		if (want != pte) {
			r = m->cmpxchg_pte(m->ctx, gpa, pte, want);
			if (r)
				return r;
		}
		if (level == w->level)
			w->pte = want;
		table = pte & KL_PT_ADDR;
	}
	return 0;
}

int kl_paging_walk(const struct kl_paging *p, const struct kl_guest_mem *m, u64 gva,
		   u32 access, bool set_ad, struct kl_walk *w)
{
	for (int tries = 0; tries < 8; tries++) {
		int r = walk_once(p, m, gva, access, w);

		if (r || !set_ad || !paging_on(p))
			return r;
		r = set_walk_ad(p, m, gva, access & KL_PF_W, w);
		if (r != -EAGAIN)
			return r;
	}
	return -EAGAIN;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Physical pages, page tables and address spaces, in the image's paging
 * format (4-level, PAE or 2-level: rt.h).
 *
 * Frames above the image are handed out from a free list threaded through
 * the free frames themselves, with a reference count per frame so address
 * spaces can share frames (copy-on-write). All RAM is identity-mapped with
 * global large pages in slot 0, so a table's physical address is also a
 * usable pointer.
 */
#include "rt.h"

extern char __user_text_lma[];

struct aspace kl_kernel_as;

void kl_paging_enable(ulong root);

static u64 mem_bytes, frames_end;
static ulong frames_base, bump;
static ulong free_list;
static u64 free_count;
static u16 *refcount;		/* indexed by frame number */

static inline u16 *ref_of(ulong pa)
{
	return &refcount[pa / PAGE_SIZE];
}

u64 kl_mem_bytes(void)
{
	return mem_bytes;
}

static struct kl_spinlock frames_lock;	/* the free list, bump, free_count */

ulong page_alloc(void)
{
	ulong pa;

	kl_spin_lock(&frames_lock);
	if (free_list) {
		pa = free_list;
		free_list = *(ulong *)pa;
		free_count--;
	} else if (bump < frames_end) {
		pa = bump;
		bump += PAGE_SIZE;
	} else {
		kl_spin_unlock(&frames_lock);
		kl_panic("guest out of memory (%llu MiB)",
			 (unsigned long long)(mem_bytes >> 20));
	}
	kl_spin_unlock(&frames_lock);
	memset((void *)pa, 0, PAGE_SIZE);
	*ref_of(pa) = 1;
	return pa;
}

/*
 * A LARGE_PAGE_SIZE-aligned run of frames for large-page experiments. Frames
 * skipped to reach the alignment go to the free list, so nothing is lost.
 */
ulong page_alloc_large(void)
{
	ulong pa;

	while (bump & (LARGE_PAGE_SIZE - 1) && bump < frames_end) {
		*ref_of(bump) = 1;
		page_free(bump);
		bump += PAGE_SIZE;
	}
	if (bump + LARGE_PAGE_SIZE > frames_end)
		kl_panic("guest out of memory for a large page");
	pa = bump;
	bump += LARGE_PAGE_SIZE;
	for (ulong f = pa; f < bump; f += PAGE_SIZE)
		*ref_of(f) = 1;
	memset((void *)pa, 0, LARGE_PAGE_SIZE);
	return pa;
}

void page_free(ulong pa)
{
	if (pa < frames_base || pa >= frames_end || (pa & (PAGE_SIZE - 1)))
		kl_panic("page_free of bad frame %llx", (unsigned long long)pa);
	*ref_of(pa) = 0;
	kl_spin_lock(&frames_lock);
	*(ulong *)pa = free_list;
	free_list = pa;
	free_count++;
	kl_spin_unlock(&frames_lock);
}

u64 page_free_count(void)
{
	return free_count + (frames_end - bump) / PAGE_SIZE;
}

void page_get(ulong pa)
{
	(*ref_of(pa))++;
}

u32 page_put(ulong pa)
{
	u16 *r = ref_of(pa);

	if (*r == 0)
		kl_panic("page_put of free frame %llx", (unsigned long long)pa);
	if (--*r == 0)
		page_free(pa);
	return *r;
}

u32 page_refs(ulong pa)
{
	return *ref_of(pa);
}

/* The top level: PML4 (4-level), PDPT (PAE: 4 entries), PD (2-level). */
#define TOP_LEVEL	KL_PAGING_LEVELS
/* Top-level entries below the user slots (identity map, kernel area): shared. */
#define SHARED_TOP	index_of(KL_USER_TEXT_VA, TOP_LEVEL)
#define TOP_ENTRIES	(KL_PAGING_LEVELS == 3 ? 4U : PT_ENTRIES)

static struct aspace *spaces;	/* every live space but the kernel's */

static inline unsigned int index_of(ulong va, int level)
{
	return (va >> (12 + PT_INDEX_BITS * (level - 1))) & (PT_ENTRIES - 1);
}

/* Large pages: PDEs everywhere, PDPTEs only in 4-level (PAE reserves PS there). */
static inline bool is_large(pte_t e, int level)
{
	return (e & PTE_PS) && (level == 2 || (level == 3 && KL_PAGING_LEVELS == 4));
}

/*
 * The flags a new table's entry gets. PAE's PDPTEs have no R/W, U/S or A:
 * those bits are reserved there, and a CR3 load with one set faults.
 */
static pte_t table_entry_flags(int level, pte_t table_flags)
{
	return KL_PAGING_LEVELS == 3 && level == 3 ? PTE_P : table_flags;
}

/*
 * 2-level has no shared slot below the top table: each space holds copies
 * of the kernel's PDEs, so a PDE the kernel gains later is copied into
 * every space (Linux's pgd_list does the same for 32-bit kernels).
 */
static void sync_kernel_pde(ulong root, unsigned int i, pte_t pde)
{
	if (KL_PAGING_LEVELS != 2 || root != kl_kernel_as.root || i >= SHARED_TOP)
		return;
	for (struct aspace *as = spaces; as; as = as->next)
		write_pte(&((pte_t *)as->root)[i], pde);
}

pte_t *pt_entry(ulong root, ulong va, int level, pte_t table_flags)
{
	pte_t *table = (pte_t *)root;

	for (int l = TOP_LEVEL; l > level; l--) {
		pte_t *e = &table[index_of(va, l)], v = read_pte(e);

		/* v, not *e, from here: in a pv lazy section *e is written later. */
		if (!(v & PTE_P)) {
			if (!table_flags)
				return NULL;
			v = page_alloc() | table_entry_flags(l, table_flags);
			write_pte(e, v);
			if (l == TOP_LEVEL)
				sync_kernel_pde(root, index_of(va, l), v);
		} else if (is_large(v, l)) {
			return NULL;	/* a large page covers va */
		}
		table = (pte_t *)(ulong)(v & PTE_ADDR_MASK);
	}
	return &table[index_of(va, level)];
}

static pte_t table_flags_for(ulong va)
{
	/* User slots get U in the upper levels; the leaf decides. */
	return va >= KL_USER_TEXT_VA ? PTE_P | PTE_W | PTE_U : PTE_P | PTE_W;
}

void pt_map(ulong root, ulong va, ulong pa, pte_t flags)
{
	write_pte(pt_entry(root, va, 1, table_flags_for(va)), pa | flags);
}

void pt_map_large(ulong root, ulong va, ulong pa, pte_t flags)
{
	pte_t *e = pt_entry(root, va, 2, table_flags_for(va));

	write_pte(e, pa | flags | PTE_PS);
	if (TOP_LEVEL == 2)
		sync_kernel_pde(root, index_of(va, 2), pa | flags | PTE_PS);
}

pte_t *pt_leaf(ulong root, ulong va, int *level)
{
	pte_t *table = (pte_t *)root;

	for (int l = TOP_LEVEL; l >= 1; l--) {
		pte_t *e = &table[index_of(va, l)], v = read_pte(e);

		if (!(v & PTE_P))
			return NULL;
		if (l == 1 || is_large(v, l)) {
			if (level)
				*level = l;
			return e;
		}
		table = (pte_t *)(ulong)(v & PTE_ADDR_MASK);
	}
	return NULL;
}

pte_t pt_unmap(ulong root, ulong va)
{
	pte_t *e = pt_entry(root, va, 1, 0);
	pte_t old = e ? *e : 0;

	kl_pv_lazy_begin();	/* the write and the INVLPG: one hypercall under pv */
	if (e)
		write_pte(e, 0);
	invlpg(va);
	kl_pv_lazy_end();
	return old;
}

/*
 * A new space shares the kernel's slots. Under PAE the CPU reads the four
 * PDPTEs only at a CR3 load, so a PD added to a loaded space would go
 * unseen: the user slots' PDs are allocated up front, as Linux does.
 */
void aspace_init(struct aspace *as)
{
	pte_t *top = (pte_t *)page_alloc();

	for (unsigned int i = 0; i < SHARED_TOP; i++)
		top[i] = ((pte_t *)kl_kernel_as.root)[i];
	if (KL_PAGING_LEVELS == 3)
		for (unsigned int i = SHARED_TOP; i < TOP_ENTRIES; i++)
			top[i] = page_alloc() | PTE_P;
	as->root = (ulong)top;
	as->next = spaces;
	spaces = as;
}

/* Frees a user table and everything it maps, bottom-up. */
static void free_table(ulong table_pa, int level)
{
	pte_t *t = (pte_t *)table_pa;

	for (unsigned int i = 0; i < PT_ENTRIES; i++) {
		pte_t e = t[i];
		ulong pa = (ulong)(e & PTE_ADDR_MASK);

		if (!(e & PTE_P))
			continue;
		if (level > 1 && !is_large(e, level))
			free_table(pa, level - 1);
		else if (level == 1 && page_refs(pa))
			page_put(pa);
	}
	page_free(table_pa);
}

/* Under mmu=pv: tell the hypervisor which pages stop being tables, before they are written. */
static void release_table(ulong table_pa, int level)
{
	pte_t *t = (pte_t *)table_pa;

	for (unsigned int i = 0; level > 1 && i < PT_ENTRIES; i++)
		if ((t[i] & PTE_P) && !is_large(t[i], level))
			release_table((ulong)(t[i] & PTE_ADDR_MASK), level - 1);
	kl_pv_release(table_pa);
}

void aspace_destroy(struct aspace *as)
{
	pte_t *top = (pte_t *)as->root;

	if (read_cr3() == as->root)
		aspace_switch(&kl_kernel_as);
	for (struct aspace **p = &spaces; *p; p = &(*p)->next) {
		if (*p == as) {
			*p = as->next;
			break;
		}
	}
	if (kl_pv_mmu) {
		kl_pv_lazy_begin();
		for (unsigned int i = SHARED_TOP; i < TOP_ENTRIES; i++)
			if (top[i] & PTE_P)
				release_table((ulong)(top[i] & PTE_ADDR_MASK), TOP_LEVEL - 1);
		kl_pv_release(as->root);
		kl_pv_lazy_end();
	}
	for (unsigned int i = SHARED_TOP; i < TOP_ENTRIES; i++)
		if (top[i] & PTE_P)
			free_table((ulong)(top[i] & PTE_ADDR_MASK), TOP_LEVEL - 1);
	page_free(as->root);
	as->root = 0;
}

void aspace_switch(struct aspace *as)
{
	write_cr3(as->root);
}

/*
 * The user text frames belong to the image, not to the allocator: they get
 * no reference count, so free_table leaves them alone.
 */
void aspace_map_user_text(struct aspace *as)
{
	ulong size = ABS_SYM(__user_text_end) - ABS_SYM(__user_text_start);

	for (ulong off = 0; off < size; off += PAGE_SIZE)
		pt_map(as->root, KL_USER_TEXT_VA + off,
		       (ulong)__user_text_lma + off, PTE_P | PTE_U);
}

void kl_mm_init(const struct kl_boot_info *bi)
{
	u64 frames;
	pte_t *top;

	/* The runtime uses the RAM its identity map covers (1 GiB in 32-bit). */
	mem_bytes = bi->mem_bytes < KL_IDENTITY_MAX ? bi->mem_bytes : KL_IDENTITY_MAX;
	frames = mem_bytes / PAGE_SIZE;
	/* Reference counts first, right after the image; frames after them. */
	refcount = (u16 *)(ulong)((bi->image_end + PAGE_SIZE - 1) & ~(u64)(PAGE_SIZE - 1));
	frames_base = ((ulong)refcount + frames * sizeof(u16) + PAGE_SIZE - 1) &
		      ~(PAGE_SIZE - 1);
	frames_end = mem_bytes & ~(u64)(PAGE_SIZE - 1);
	if (frames_base >= frames_end)
		kl_panic("guest memory too small");
	memset(refcount, 0, frames * sizeof(u16));
	bump = frames_base;

	top = (pte_t *)page_alloc();
	kl_kernel_as.root = (ulong)top;
	for (ulong pa = 0; pa < mem_bytes; pa += LARGE_PAGE_SIZE)
		pt_map_large(kl_kernel_as.root, pa, pa, PTE_P | PTE_W | PTE_G);
	/* The shared kernel area: one table every space points at (2-level: lazily). */
	if (KL_PAGING_LEVELS == 4)
		top[1] = page_alloc() | PTE_P | PTE_W;
	else if (KL_PAGING_LEVELS == 3)
		top[1] = page_alloc() | PTE_P;
	kl_paging_enable(kl_kernel_as.root);
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Physical pages, page tables and address spaces.
 *
 * Frames above the image are handed out from a free list threaded through
 * the free frames themselves, with a reference count per frame so address
 * spaces can share frames (copy-on-write). All RAM is identity-mapped with
 * 2 MiB global pages in PML4 slot 0, so a table's physical address is also
 * a usable pointer.
 */
#include "rt.h"

extern char __user_text_lma[];

struct aspace kl_kernel_as;

static u64 mem_bytes, frames_base, frames_end, bump;
static u64 free_list, free_count;
static u16 *refcount;		/* indexed by frame number */

static inline u16 *ref_of(u64 pa)
{
	return &refcount[pa / PAGE_SIZE];
}

u64 kl_mem_bytes(void)
{
	return mem_bytes;
}

u64 page_alloc(void)
{
	u64 pa;

	if (free_list) {
		pa = free_list;
		free_list = *(u64 *)pa;
		free_count--;
	} else if (bump < frames_end) {
		pa = bump;
		bump += PAGE_SIZE;
	} else {
		kl_panic("guest out of memory (%llu MiB)",
			 (unsigned long long)(mem_bytes >> 20));
	}
	memset((void *)pa, 0, PAGE_SIZE);
	*ref_of(pa) = 1;
	return pa;
}

/*
 * A 2 MiB-aligned run of frames for large-page experiments. Frames skipped
 * to reach the alignment go to the free list, so nothing is lost.
 */
u64 page_alloc_2m(void)
{
	u64 pa;

	while (bump & (LARGE_PAGE_SIZE - 1) && bump < frames_end) {
		*ref_of(bump) = 1;
		page_free(bump);
		bump += PAGE_SIZE;
	}
	if (bump + LARGE_PAGE_SIZE > frames_end)
		kl_panic("guest out of memory for a 2 MiB page");
	pa = bump;
	bump += LARGE_PAGE_SIZE;
	for (u64 f = pa; f < bump; f += PAGE_SIZE)
		*ref_of(f) = 1;
	memset((void *)pa, 0, LARGE_PAGE_SIZE);
	return pa;
}

void page_free(u64 pa)
{
	if (pa < frames_base || pa >= frames_end || (pa & (PAGE_SIZE - 1)))
		kl_panic("page_free of bad frame %llx", (unsigned long long)pa);
	*ref_of(pa) = 0;
	*(u64 *)pa = free_list;
	free_list = pa;
	free_count++;
}

u64 page_free_count(void)
{
	return free_count + (frames_end - bump) / PAGE_SIZE;
}

void page_get(u64 pa)
{
	(*ref_of(pa))++;
}

u32 page_put(u64 pa)
{
	u16 *r = ref_of(pa);

	if (*r == 0)
		kl_panic("page_put of free frame %llx", (unsigned long long)pa);
	if (--*r == 0)
		page_free(pa);
	return *r;
}

u32 page_refs(u64 pa)
{
	return *ref_of(pa);
}

static inline int index_of(u64 va, int level)
{
	return (va >> (12 + 9 * (level - 1))) & 511;
}

u64 *pt_entry(u64 root, u64 va, int level, u64 table_flags)
{
	u64 *table = (u64 *)root;

	for (int l = 4; l > level; l--) {
		u64 *e = &table[index_of(va, l)];

		if (!(*e & PTE_P)) {
			if (!table_flags)
				return NULL;
			*e = page_alloc() | table_flags;
		} else if (*e & PTE_PS) {
			return NULL;	/* a large page covers va */
		}
		table = (u64 *)(*e & PTE_ADDR_MASK);
	}
	return &table[index_of(va, level)];
}

static u64 table_flags_for(u64 va)
{
	/* User slots get U in the upper levels; the leaf decides. */
	return va >= KL_USER_TEXT_VA ? PTE_P | PTE_W | PTE_U : PTE_P | PTE_W;
}

void pt_map(u64 root, u64 va, u64 pa, u64 flags)
{
	*pt_entry(root, va, 1, table_flags_for(va)) = pa | flags;
}

void pt_map_large(u64 root, u64 va, u64 pa, u64 flags)
{
	*pt_entry(root, va, 2, table_flags_for(va)) = pa | flags | PTE_PS;
}

u64 *pt_leaf(u64 root, u64 va, int *level)
{
	u64 *table = (u64 *)root;

	for (int l = 4; l >= 1; l--) {
		u64 *e = &table[index_of(va, l)];

		if (!(*e & PTE_P))
			return NULL;
		if (l == 1 || (l <= 3 && (*e & PTE_PS))) {
			if (level)
				*level = l;
			return e;
		}
		table = (u64 *)(*e & PTE_ADDR_MASK);
	}
	return NULL;
}

u64 pt_unmap(u64 root, u64 va)
{
	u64 *e = pt_entry(root, va, 1, 0);
	u64 old = e ? *e : 0;

	if (e)
		*e = 0;
	invlpg(va);
	return old;
}

void aspace_init(struct aspace *as)
{
	u64 *pml4 = (u64 *)page_alloc();

	/* Slots 0 (identity map) and 1 (kernel area) are shared. */
	pml4[0] = ((u64 *)kl_kernel_as.root)[0];
	pml4[1] = ((u64 *)kl_kernel_as.root)[1];
	as->root = (u64)pml4;
}

/* Frees a user table and everything it maps, bottom-up. */
static void free_table(u64 table_pa, int level)
{
	u64 *t = (u64 *)table_pa;

	for (int i = 0; i < 512; i++) {
		u64 e = t[i];

		if (!(e & PTE_P))
			continue;
		if (level > 1 && !(e & PTE_PS))
			free_table(e & PTE_ADDR_MASK, level - 1);
		else if (level == 1 && page_refs(e & PTE_ADDR_MASK))
			page_put(e & PTE_ADDR_MASK);
	}
	page_free(table_pa);
}

void aspace_destroy(struct aspace *as)
{
	u64 *pml4 = (u64 *)as->root;

	if (read_cr3() == as->root)
		aspace_switch(&kl_kernel_as);
	for (int i = 2; i < 512; i++)
		if (pml4[i] & PTE_P)
			free_table(pml4[i] & PTE_ADDR_MASK, 3);
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
	u64 size = ABS_SYM(__user_text_end) - ABS_SYM(__user_text_start);

	for (u64 off = 0; off < size; off += PAGE_SIZE)
		pt_map(as->root, KL_USER_TEXT_VA + off,
		       (u64)__user_text_lma + off, PTE_P | PTE_U);
}

void kl_mm_init(const struct kl_boot_info *bi)
{
	u64 frames;
	u64 *pml4;

	mem_bytes = bi->mem_bytes;
	frames = mem_bytes / PAGE_SIZE;
	/* Reference counts first, right after the image; frames after them. */
	refcount = (u16 *)((bi->image_end + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1));
	frames_base = ((u64)refcount + frames * sizeof(u16) + PAGE_SIZE - 1) &
		      ~(PAGE_SIZE - 1);
	frames_end = mem_bytes & ~(PAGE_SIZE - 1);
	if (frames_base >= frames_end)
		kl_panic("guest memory too small");
	memset(refcount, 0, frames * sizeof(u16));
	bump = frames_base;

	pml4 = (u64 *)page_alloc();
	kl_kernel_as.root = (u64)pml4;
	for (u64 pa = 0; pa < mem_bytes; pa += LARGE_PAGE_SIZE)
		pt_map_large(kl_kernel_as.root, pa, pa, PTE_P | PTE_W | PTE_G);
	pml4[1] = page_alloc() | PTE_P | PTE_W;	/* the shared kernel area */
	aspace_switch(&kl_kernel_as);
}

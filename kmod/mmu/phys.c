// SPDX-License-Identifier: GPL-2.0
/*
 * Physical mode for the shadow strategies: a guest running with paging off.
 *
 * Without nested paging the CPU must translate every guest access, so a
 * guest with CR0.PG=0 still runs on page tables: ours, mapping each guest
 * physical address to the host page behind it (gva == gpa). That is what a
 * Multiboot kernel needs for its first instructions (32-bit protected mode,
 * paging off) before it turns on long mode and the strategy takes over.
 *
 * Such a guest is not in long mode, so the CPU runs legacy PAE paging:
 * CR3 names a 4-entry page-directory-pointer table whose entries may hold
 * nothing but P and an address (the other bits are reserved there). The
 * tree itself is an ordinary 4-level shadow tree (stree.c); before each
 * entry its first four PDPT entries are copied, stripped, into the vCPU's
 * PAE root below 4 GiB (kl_pae_root, mmu.c) — as KVM's pae_root does.
 *
 * The tree is per vCPU, built on #PF, and dropped when the memslots change
 * or the guest turns paging on.
 *
 * That is AMD's way, where even real mode runs on it ("paged real mode",
 * CR0.PG=1 with PE=0). VT-x refuses paging without protected mode; real
 * mode there needs "unrestricted guest", which needs EPT. So on VMX
 * (kl_phys_nested) the same tree is built in EPT's format and becomes the
 * nested root while paging is off: the CPU translates gpa to hpa through it
 * and the faults arrive as EPT violations, handled here all the same. The
 * strategy itself still shadows once paging is on.
 */
#include <linux/gfp.h>
#include <linux/mm.h>
#include <asm/io.h>
#include "mmu.h"

#define PHYS_LEAF_FLAGS	(KL_PT_P | KL_PT_W | KL_PT_U | KL_PT_A | KL_PT_D)

bool kl_phys_nested;

bool kl_phys_mode(struct kl_vcpu *vcpu)
{
	return !vcpu->vm->mmu->hw_paging && !kl_guest_paging(vcpu);
}

static int phys_init(struct kl_vcpu *vcpu)
{
	if (kl_stree_init(vcpu->vm, &vcpu->phys, false))
		return -ENOMEM;
	if (kl_phys_nested)
		vcpu->phys.nonleaf = kl_tdp.nonleaf;
	vcpu->phys_gen = vcpu->vm->memslots_gen;
	return 0;
}

void kl_phys_destroy(struct kl_vcpu *vcpu)
{
	if (vcpu->phys.root)
		kl_stree_destroy(vcpu->vm, &vcpu->phys);
}

/* Outside physical mode the tree only pins pages: let them go. */
void kl_phys_leave(struct kl_vcpu *vcpu)
{
	if (vcpu->phys.root && vcpu->phys.nr_pages > 1) {
		kl_stree_zap_all(vcpu->vm, &vcpu->phys);
		kl_flush_tlb(vcpu);
	}
}

/*
 * The CR3 to run a physical-mode guest on (a PAE root), or with
 * kl_phys_nested the nested root; 0 on allocation failure.
 */
u64 kl_phys_root(struct kl_vcpu *vcpu)
{
	if (!vcpu->phys.root && phys_init(vcpu))
		return 0;
	if (vcpu->phys_gen != vcpu->vm->memslots_gen) {
		kl_stree_zap_all(vcpu->vm, &vcpu->phys);
		kl_flush_tlb(vcpu);
		vcpu->phys_gen = vcpu->vm->memslots_gen;
	}
	if (kl_phys_nested)
		return page_to_phys(vcpu->phys.root);
	return kl_pae_root(vcpu, page_to_phys(vcpu->phys.root));
}

/* A #PF in physical mode: map the page, or it is MMIO. Never the guest's. */
enum kl_pf_result kl_phys_page_fault(struct kl_vcpu *vcpu, struct kl_pf_info *pf)
{
	u64 gpa = pf->addr & 0xffffffffULL;
	int r;

	pf->gpa = pf->addr;
	if (!kl_gfn_is_ram(vcpu->vm, gpa >> PAGE_SHIFT, pf->error & KL_PF_W))
		return KL_PF_MMIO;
	r = kl_stree_install(vcpu->vm, &vcpu->phys, gpa & PAGE_MASK, gpa & PAGE_MASK,
			     kl_phys_nested ? kl_tdp.leaf : PHYS_LEAF_FLAGS, PAGE_SIZE,
			     pf->error & KL_PF_W);
	return r ? kl_pf_error(pf, r) : KL_PF_FIXED;
}

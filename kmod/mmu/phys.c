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
 * entry its first four PDPT entries are copied, stripped, into a PAE root
 * below 4 GiB — as KVM's pae_root does.
 *
 * The tree is per vCPU, built on #PF, and dropped when the memslots change
 * or the guest turns paging on. Paged 32-bit guests (legacy or PAE paging
 * without long mode) are not modelled by the strategies: see kmod/README.md.
 */
#include <linux/gfp.h>
#include <linux/mm.h>
#include <asm/io.h>
#include "mmu.h"

#define PHYS_LEAF_FLAGS	(KL_PT_P | KL_PT_W | KL_PT_U | KL_PT_A | KL_PT_D)

bool kl_phys_mode(struct kl_vcpu *vcpu)
{
	return !vcpu->vm->mmu->hw_paging && !kl_guest_paging(vcpu);
}

static int phys_init(struct kl_vcpu *vcpu)
{
	vcpu->phys_pae_root = alloc_page(GFP_KERNEL_ACCOUNT | GFP_DMA32 | __GFP_ZERO);
	if (!vcpu->phys_pae_root)
		return -ENOMEM;
	if (kl_stree_init(vcpu->vm, &vcpu->phys, false)) {
		__free_page(vcpu->phys_pae_root);
		vcpu->phys_pae_root = NULL;
		return -ENOMEM;
	}
	vcpu->phys_gen = vcpu->vm->memslots_gen;
	return 0;
}

void kl_phys_destroy(struct kl_vcpu *vcpu)
{
	if (!vcpu->phys_pae_root)
		return;
	kl_stree_destroy(vcpu->vm, &vcpu->phys);
	__free_page(vcpu->phys_pae_root);
	vcpu->phys_pae_root = NULL;
}

/* Outside physical mode the tree only pins pages: let them go. */
void kl_phys_leave(struct kl_vcpu *vcpu)
{
	if (vcpu->phys_pae_root && vcpu->phys.nr_pages > 1) {
		kl_stree_zap_all(vcpu->vm, &vcpu->phys);
		kl_flush_tlb(vcpu);
	}
}

/*
 * The CR3 to run a physical-mode guest on, or 0 on allocation failure.
 * The PDPT entries are refreshed every time: a #PF may have added one.
 */
u64 kl_phys_root(struct kl_vcpu *vcpu)
{
	u64 *pae, *pml4, *pdpt;

	if (!vcpu->phys_pae_root && phys_init(vcpu))
		return 0;
	if (vcpu->phys_gen != vcpu->vm->memslots_gen) {
		kl_stree_zap_all(vcpu->vm, &vcpu->phys);
		kl_flush_tlb(vcpu);
		vcpu->phys_gen = vcpu->vm->memslots_gen;
	}
	pae = page_address(vcpu->phys_pae_root);
	pml4 = page_address(vcpu->phys.root);
	memset(pae, 0, 4 * sizeof(u64));
	if (pml4[0] & KL_PT_P) {
		pdpt = page_address(pfn_to_page((pml4[0] & KL_PT_ADDR) >> PAGE_SHIFT));
		for (int i = 0; i < 4; i++)
			pae[i] = pdpt[i] & (KL_PT_ADDR | KL_PT_P);
	}
	return page_to_phys(vcpu->phys_pae_root);
}

/* A #PF in physical mode: map the page, or it is MMIO. Never the guest's. */
enum kl_pf_result kl_phys_page_fault(struct kl_vcpu *vcpu, struct kl_pf_info *pf)
{
	u64 gpa = pf->addr & 0xffffffffULL;
	int r;

	pf->gpa = pf->addr;
	if (!kl_gfn_to_memslot(vcpu->vm, gpa >> PAGE_SHIFT))
		return KL_PF_MMIO;
	r = kl_stree_install(vcpu->vm, &vcpu->phys, gpa & PAGE_MASK, gpa & PAGE_MASK,
			     PHYS_LEAF_FLAGS, false);
	return r ? kl_pf_error(pf, r) : KL_PF_FIXED;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Runtime start-up: descriptor tables, the MSRs SYSCALL needs, EFER.NXE,
 * CR4.PGE, and the kernel's own page tables. The harness enters us in
 * 64-bit mode on throw-away boot tables; after kl_start the workload runs on
 * tables it owns, built with the same library it uses for its experiments.
 */
#include "rt.h"
#include "asm.h"

#define MSR_EFER	0xc0000080
#define MSR_STAR	0xc0000081
#define MSR_LSTAR	0xc0000082
#define MSR_SFMASK	0xc0000084
#define EFER_SCE	(1ULL << 0)
#define EFER_NXE	(1ULL << 11)
#define CR0_WP		(1ULL << 16)
#define CR4_PGE		(1ULL << 7)
#define RFLAGS_IF_TF_DF	((1ULL << 9) | (1ULL << 8) | (1ULL << 10))

struct tss64 {
	u32 reserved0;
	u64 rsp[3];
	u64 reserved1;
	u64 ist[7];
	u64 reserved2;
	u16 reserved3;
	u16 iomap_base;
} __attribute__((packed));

struct idt_gate {
	u16 offset_lo;
	u16 selector;
	u8 ist;
	u8 type_attr;
	u16 offset_mid;
	u32 offset_hi;
	u32 reserved;
} __attribute__((packed));

struct desc_ptr {
	u16 limit;
	u64 base;
} __attribute__((packed));

extern char kl_trap_stubs[], kl_trap_stack_top[], kl_syscall_entry[];
void kl_load_segments(u16 cs, u16 ds);
void kl_mm_init(const struct kl_boot_info *bi);

static u64 gdt[8] __attribute__((aligned(16)));
static struct tss64 tss __attribute__((aligned(16)));
static struct idt_gate idt[32] __attribute__((aligned(16)));

static void setup_gdt(void)
{
	u64 base = (u64)&tss, limit = sizeof(tss) - 1;
	struct desc_ptr gdtr = { sizeof(gdt) - 1, (u64)gdt };

	gdt[KERNEL_CS >> 3] = 0x00af9b000000ffffULL;	/* 64-bit code, DPL0 */
	gdt[KERNEL_DS >> 3] = 0x00cf93000000ffffULL;	/* data, DPL0 */
	gdt[USER_CS32 >> 3] = 0x00cffb000000ffffULL;	/* 32-bit code, DPL3 */
	gdt[USER_DS >> 3] = 0x00cff3000000ffffULL;	/* data, DPL3 */
	gdt[USER_CS >> 3] = 0x00affb000000ffffULL;	/* 64-bit code, DPL3 */
	/* 16-byte available 64-bit TSS descriptor. */
	gdt[TSS_SEL >> 3] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
			    (0x89ULL << 40) | (((limit >> 16) & 0xf) << 48) |
			    (((base >> 24) & 0xff) << 56);
	gdt[(TSS_SEL >> 3) + 1] = base >> 32;
	tss.rsp[0] = (u64)kl_trap_stack_top;
	tss.iomap_base = sizeof(tss);

	asm volatile("lgdt %0" :: "m"(gdtr));
	kl_load_segments(KERNEL_CS, KERNEL_DS);
	asm volatile("ltr %w0" :: "r"(TSS_SEL));
}

static void setup_idt(void)
{
	struct desc_ptr idtr = { sizeof(idt) - 1, (u64)idt };

	for (int v = 0; v < 32; v++) {
		u64 h = (u64)kl_trap_stubs + 16 * v;	/* stubs are 16-byte aligned */

		idt[v] = (struct idt_gate) {
			.offset_lo = h & 0xffff, .selector = KERNEL_CS,
			/* interrupt gate; DPL3 on #BP so int3 works from CPL3 */
			.type_attr = v == VEC_BP ? 0xee : 0x8e,
			.offset_mid = (h >> 16) & 0xffff, .offset_hi = h >> 32,
		};
	}
	asm volatile("lidt %0" :: "m"(idtr));
}

static void setup_cpu(void)
{
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE | EFER_NXE);
	wrmsr(MSR_STAR, ((u64)USER_CS32 << 48) | ((u64)KERNEL_CS << 32));
	wrmsr(MSR_LSTAR, (u64)kl_syscall_entry);
	wrmsr(MSR_SFMASK, RFLAGS_IF_TF_DF);
	write_cr0(read_cr0() | CR0_WP);
	write_cr4(read_cr4() | CR4_PGE);
}

void kl_start(const struct kl_boot_info *bi)
{
	int rc;

	setup_gdt();
	setup_idt();
	if (bi->magic != KL_BOOT_MAGIC)
		kl_panic("bad boot info magic %llx", (unsigned long long)bi->magic);
	setup_cpu();
	kl_mm_init(bi);
	rc = workload_main();
	kl_exit(rc);
}

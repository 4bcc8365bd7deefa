// SPDX-License-Identifier: GPL-2.0
/*
 * Runtime start-up: descriptor tables, the MSRs SYSCALL needs, EFER.NXE,
 * CR4.PGE, and the kernel's own page tables. The harness enters the 64-bit
 * runtime in 64-bit mode on throw-away boot tables, and the 32-bit runtime
 * in real mode (entry32.S switches to protected mode, paging off); after
 * kl_start the workload runs on tables it owns, built with the same
 * library it uses for its experiments.
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

#define CR0_PG		(1UL << 31)
#define CR4_PSE		(1UL << 4)
#define CR4_PAE		(1UL << 5)

extern char kl_trap_stubs[], kl_trap_stack_top[], kl_syscall_entry[];
void kl_mm_init(const struct kl_boot_info *bi);

/* The low 8 bytes of an available TSS descriptor (type 9: 32-bit, or 64-bit in long mode). */
static u64 tss_descriptor(u64 base, u64 limit)
{
	return (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ULL << 40) |
	       (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
}

#if KL_PAGING_LEVELS == 4
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

void kl_load_segments(u16 cs, u16 ds);

static u64 gdt[8] __attribute__((aligned(16)));
static struct tss64 tss __attribute__((aligned(16)));
static struct idt_gate idt[256] __attribute__((aligned(16)));
extern char kl_irq_stub_240[], kl_irq_stub_241[], kl_irq_stub_255[];

static void set_gate(int v, u64 h, u8 type_attr)
{
	idt[v] = (struct idt_gate) {
		.offset_lo = h & 0xffff, .selector = KERNEL_CS, .type_attr = type_attr,
		.offset_mid = (h >> 16) & 0xffff, .offset_hi = h >> 32,
	};
}

/*
 * A secondary CPU (smp.c) shares the GDT and IDT. It loads no TSS: the
 * boot CPU's is busy, and a CPU that never leaves CPL0 does not need one.
 */
void kl_load_tables(void)
{
	struct desc_ptr gdtr = { sizeof(gdt) - 1, (u64)gdt };
	struct desc_ptr idtr = { sizeof(idt) - 1, (u64)idt };

	asm volatile("lgdt %0" :: "m"(gdtr));
	kl_load_segments(KERNEL_CS, KERNEL_DS);
	asm volatile("lidt %0" :: "m"(idtr));
}

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
	gdt[TSS_SEL >> 3] = tss_descriptor(base, limit);
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

	/* interrupt gates; DPL3 on #BP so int3 works from CPL3; stubs 16 bytes apart */
	for (int v = 0; v < 32; v++)
		set_gate(v, (u64)kl_trap_stubs + 16 * v, v == VEC_BP ? 0xee : 0x8e);
	set_gate(KL_VEC_SHOOTDOWN, (u64)kl_irq_stub_240, 0x8e);
	set_gate(KL_VEC_WAKE, (u64)kl_irq_stub_241, 0x8e);
	set_gate(KL_VEC_SPURIOUS, (u64)kl_irq_stub_255, 0x8e);
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

void kl_paging_enable(ulong root)
{
	write_cr3(root);	/* long mode: paging is on already */
}

#else /* 32-bit protected mode */

struct tss32 {
	u32 link, esp0, ss0, esp1, ss1, esp2, ss2;
	u32 cr3, eip, eflags, eax, ecx, edx, ebx, esp, ebp, esi, edi;
	u32 es, cs, ss, ds, fs, gs, ldt;
	u16 trap, iomap_base;
} __attribute__((packed));

struct idt_gate {
	u16 offset_lo;
	u16 selector;
	u8 zero;
	u8 type_attr;
	u16 offset_hi;
} __attribute__((packed));

struct desc_ptr {
	u16 limit;
	u32 base;
} __attribute__((packed));

#define NR_VECTORS	(KL_SYSCALL_VECTOR + 1)

void kl_load_segments(u16 cs, u16 ds);

static u64 gdt[6] __attribute__((aligned(16)));
static struct tss32 tss __attribute__((aligned(16)));
static struct idt_gate idt[NR_VECTORS] __attribute__((aligned(16)));

static void setup_gdt(void)
{
	u64 base = (ulong)&tss, limit = sizeof(tss) - 1;
	struct desc_ptr gdtr = { sizeof(gdt) - 1, (ulong)gdt };

	gdt[KERNEL_CS >> 3] = 0x00cf9b000000ffffULL;	/* 32-bit code, DPL0 */
	gdt[KERNEL_DS >> 3] = 0x00cf93000000ffffULL;	/* data, DPL0 */
	gdt[USER_CS >> 3] = 0x00cffb000000ffffULL;	/* 32-bit code, DPL3 */
	gdt[USER_DS >> 3] = 0x00cff3000000ffffULL;	/* data, DPL3 */
	gdt[TSS_SEL >> 3] = tss_descriptor(base, limit);
	tss.esp0 = (ulong)kl_trap_stack_top;
	tss.ss0 = KERNEL_DS;
	tss.iomap_base = sizeof(tss);

	asm volatile("lgdt %0" :: "m"(gdtr));
	kl_load_segments(KERNEL_CS, KERNEL_DS);
	asm volatile("ltr %w0" :: "r"(TSS_SEL));
}

static void set_gate(int v, ulong h, u8 type_attr)
{
	idt[v] = (struct idt_gate) {
		.offset_lo = h & 0xffff, .selector = KERNEL_CS,
		.type_attr = type_attr, .offset_hi = h >> 16,
	};
}

static void setup_idt(void)
{
	struct desc_ptr idtr = { sizeof(idt) - 1, (ulong)idt };

	/* interrupt gates; DPL3 on #BP so int3 works from CPL3 */
	for (int v = 0; v < 32; v++)
		set_gate(v, (ulong)kl_trap_stubs + 16 * v, v == VEC_BP ? 0xee : 0x8e);
	set_gate(KL_SYSCALL_VECTOR, (ulong)kl_syscall_entry, 0xee);
	asm volatile("lidt %0" :: "m"(idtr));
}

static void setup_cpu(void)
{
	u32 a, b, c, d;

	cpuid(0x80000001, &a, &b, &c, &d);
	if (KL_PAGING_LEVELS == 3 && (d & (1U << 20)))	/* NX exists: use it */
		wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
}

/* Paging on: the format's CR4 bits first, then CR3, then CR0.PG and WP. */
void kl_paging_enable(ulong root)
{
	write_cr4(read_cr4() | CR4_PGE | (KL_PAGING_LEVELS == 3 ? CR4_PAE : CR4_PSE));
	write_cr3(root);
	write_cr0(read_cr0() | CR0_PG | CR0_WP);
}

#endif

const struct kl_boot_info *kl_boot;

void kl_start(const struct kl_boot_info *bi)
{
	int rc;

	kl_boot = bi;
	setup_gdt();
	setup_idt();
	if (bi->magic != KL_BOOT_MAGIC)
		kl_panic("bad boot info magic %llx", (unsigned long long)bi->magic);
	setup_cpu();
	kl_mm_init(bi);
	kl_pv_init();		/* after the boot tables: those are written plainly */
	rc = workload_main();
	kl_exit(rc);
}

#if KL_PAGING_LEVELS != 4
/* From entry32.S: the real-mode start has no register to pass the boot info in. */
void kl_start_real_mode(void)
{
	kl_start((const struct kl_boot_info *)(ulong)KL_BOOT_INFO_GPA);
}
#endif

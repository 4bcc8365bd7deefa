// SPDX-License-Identifier: GPL-2.0
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "image.h"
#include "../lib/kvmclient.h"
#include "../lib/util.h"

/*
 * Workload images are ELF64 (x86-64 code) or ELF32 (the 32-bit runtime's
 * PAE and 2-level builds). Headers are read into their 64-bit form, so the
 * rest of the loader knows one layout.
 */
static bool elf32(const struct image *img)
{
	return img->file[EI_CLASS] == ELFCLASS32;
}

static void read_ehdr(const struct image *img, Elf64_Ehdr *eh)
{
	const Elf32_Ehdr *e32 = (const void *)img->file;

	if (!elf32(img)) {
		memcpy(eh, img->file, sizeof(*eh));
		return;
	}
	memcpy(eh->e_ident, e32->e_ident, EI_NIDENT);
	eh->e_type = e32->e_type;
	eh->e_machine = e32->e_machine;
	eh->e_entry = e32->e_entry;
	eh->e_phoff = e32->e_phoff;
	eh->e_shoff = e32->e_shoff;
	eh->e_phnum = e32->e_phnum;
	eh->e_shnum = e32->e_shnum;
	eh->e_shstrndx = e32->e_shstrndx;
}

/* Callers have checked that the tables lie inside the file. */
static void read_phdr(const struct image *img, const Elf64_Ehdr *eh, int i, Elf64_Phdr *ph)
{
	const Elf32_Phdr *p32 = (const void *)(img->file + eh->e_phoff + i * sizeof(*p32));

	if (!elf32(img)) {
		memcpy(ph, img->file + eh->e_phoff + i * sizeof(*ph), sizeof(*ph));
		return;
	}
	*ph = (Elf64_Phdr) {
		.p_type = p32->p_type, .p_offset = p32->p_offset, .p_paddr = p32->p_paddr,
		.p_filesz = p32->p_filesz, .p_memsz = p32->p_memsz,
	};
}

static void read_shdr(const struct image *img, const Elf64_Ehdr *eh, int i, Elf64_Shdr *sh)
{
	const Elf32_Shdr *s32 = (const void *)(img->file + eh->e_shoff + i * sizeof(*s32));

	if (!elf32(img)) {
		memcpy(sh, img->file + eh->e_shoff + i * sizeof(*sh), sizeof(*sh));
		return;
	}
	*sh = (Elf64_Shdr) {
		.sh_name = s32->sh_name, .sh_addr = s32->sh_addr,
		.sh_offset = s32->sh_offset, .sh_size = s32->sh_size,
	};
}

static int check_header(const struct image *img, Elf64_Ehdr *eh)
{
	size_t phsize, shsize;

	if (img->file_size < sizeof(Elf64_Ehdr) || memcmp(img->file, ELFMAG, SELFMAG))
		return err("%s: not an ELF executable", img->path);
	read_ehdr(img, eh);
	if (!(eh->e_ident[EI_CLASS] == ELFCLASS64 && eh->e_machine == EM_X86_64) &&
	    !(eh->e_ident[EI_CLASS] == ELFCLASS32 && eh->e_machine == EM_386))
		return err("%s: not an x86-64 or i386 ELF executable", img->path);
	if (eh->e_type != ET_EXEC)
		return err("%s: not an ELF executable", img->path);
	phsize = elf32(img) ? sizeof(Elf32_Phdr) : sizeof(Elf64_Phdr);
	shsize = elf32(img) ? sizeof(Elf32_Shdr) : sizeof(Elf64_Shdr);
	if (eh->e_phoff + (uint64_t)eh->e_phnum * phsize > img->file_size ||
	    eh->e_shoff + (uint64_t)eh->e_shnum * shsize > img->file_size ||
	    eh->e_shstrndx >= eh->e_shnum)
		return err("%s: truncated ELF headers", img->path);
	return 0;
}

static int read_segments(struct image *img, const Elf64_Ehdr *eh)
{
	for (int i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;

		read_phdr(img, eh, i, &ph);
		if (ph.p_type != PT_LOAD)
			continue;
		if (ph.p_offset + ph.p_filesz > img->file_size || ph.p_filesz > ph.p_memsz)
			return err("%s: segment %d lies outside the file", img->path, i);
		if (ph.p_paddr + ph.p_memsz > img->image_end)
			img->image_end = ph.p_paddr + ph.p_memsz;
	}
	return 0;
}

static int read_params(struct image *img, const Elf64_Ehdr *eh)
{
	Elf64_Shdr strtab;

	read_shdr(img, eh, eh->e_shstrndx, &strtab);
	for (int i = 0; i < eh->e_shnum; i++) {
		Elf64_Shdr sh;
		const char *name;

		read_shdr(img, eh, i, &sh);
		if (strtab.sh_offset + sh.sh_name >= img->file_size ||
		    !memchr(img->file + strtab.sh_offset + sh.sh_name, 0,
			    img->file_size - strtab.sh_offset - sh.sh_name))
			return err("%s: malformed section names", img->path);
		name = (const char *)img->file + strtab.sh_offset + sh.sh_name;
		if (!strcmp(name, KL_TOOL_SECTION))
			img->tool = true;
		if (!strcmp(name, KL_SMP_SECTION))
			img->smp = true;
		if (!strcmp(name, KL_REALMODE_SECTION))
			img->real_mode = true;
		if (strcmp(name, KL_PARAM_SECTION))
			continue;
		if (sh.sh_size % sizeof(struct kl_param) ||
		    sh.sh_size / sizeof(struct kl_param) > MAX_PARAMS ||
		    sh.sh_offset + sh.sh_size > img->file_size)
			return err("%s: malformed %s section", img->path, KL_PARAM_SECTION);
		img->nparams = sh.sh_size / sizeof(struct kl_param);
		img->params_gpa = sh.sh_addr;
		if (img->params_gpa + sh.sh_size > img->image_end)
			return err("%s: %s is not inside a loaded segment",
				   img->path, KL_PARAM_SECTION);
		memcpy(img->params, img->file + sh.sh_offset, sh.sh_size);
		for (int p = 0; p < img->nparams; p++) {
			img->params[p].name[KL_PARAM_NAME_LEN - 1] = 0;
			img->params[p].help[KL_PARAM_HELP_LEN - 1] = 0;
		}
	}
	return 0;
}

/* Paths in a descriptor are relative to the descriptor's folder. */
static void resolve(const struct image *img, const char *rel, char *out, size_t size)
{
	const char *slash = strrchr(img->path, '/');

	if (rel[0] == '/' || !slash)
		snprintf(out, size, "%s", rel);
	else
		snprintf(out, size, "%.*s/%s", (int)(slash - img->path), img->path, rel);
}

/* "param NAME = DEFAULT MIN MAX help text..." */
static int boot_param(struct image *img, int line, char *spec)
{
	struct kl_param *p;
	char name[KL_PARAM_NAME_LEN];
	unsigned long long def, min, max;
	int used = 0;

	if (img->nparams == MAX_PARAMS)
		return err("%s:%d: more than %d parameters", img->path, line, MAX_PARAMS);
	if (sscanf(spec, "%23s = %llu %llu %llu %n", name, &def, &min, &max, &used) < 4 ||
	    !used || min > def || def > max)
		return err("%s:%d: expected 'param NAME = DEFAULT MIN MAX help'", img->path, line);
	p = &img->params[img->nparams++];
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->help, sizeof(p->help), "%s", spec + used);
	p->def = p->value = def;
	p->min = min;
	p->max = max;
	return 0;
}

static int boot_line(struct image *img, int line, char *key, char *value)
{
	uint64_t v;

	if (!strcmp(key, "kernel")) {
		resolve(img, value, img->kernel, sizeof(img->kernel));
	} else if (!strcmp(key, "initrd")) {
		resolve(img, value, img->initrd, sizeof(img->initrd));
	} else if (!strcmp(key, "append")) {
		snprintf(img->append, sizeof(img->append), "%s", value);
	} else if (!strcmp(key, "mem") && parse_u64(value, &v) && v >= 1 && v <= 65536) {
		img->boot_mem_bytes = v << 20;
	} else if (!strcmp(key, "phase") && (!strcmp(value, "boot") || !strcmp(value, "guest"))) {
		img->phase_from_start = !strcmp(value, "boot");
	} else if (!strcmp(key, "apic") && (!strcmp(value, "yes") || !strcmp(value, "no"))) {
		img->apic = !strcmp(value, "yes");
	} else if (!strcmp(key, "all") && (!strcmp(value, "yes") || !strcmp(value, "no"))) {
		img->not_in_all = !strcmp(value, "no");
	} else {
		return err("%s:%d: unknown key or bad value: %s = %s", img->path, line, key, value);
	}
	return 0;
}

static int open_boot_descriptor(struct image *img)
{
	size_t size;
	char *text = read_file(img->path, &size), *next;
	int line = 0, rc = 0;

	if (!text)
		return -1;
	img->boot = true;
	for (char *l = text; l && !rc; l = next) {
		char *eq, *end;

		next = strchr(l, '\n');
		if (next)
			*next++ = 0;
		line++;
		while (*l == ' ' || *l == '\t')
			l++;
		if (!*l || *l == '#')
			continue;
		if (!strncmp(l, "param ", 6)) {
			rc = boot_param(img, line, l + 6);
			continue;
		}
		eq = strchr(l, '=');
		if (!eq) {
			rc = err("%s:%d: expected 'key = value'", img->path, line);
			break;
		}
		for (end = eq; end > l && (end[-1] == ' ' || end[-1] == '\t'); end--)
			;
		*end = 0;
		for (eq++; *eq == ' ' || *eq == '\t'; eq++)
			;
		rc = boot_line(img, line, l, eq);
	}
	free(text);
	if (!rc && !img->kernel[0])
		rc = err("%s: no 'kernel = FILE' line", img->path);
	return rc;
}

int image_open(struct image *img, const char *path, const char *name)
{
	Elf64_Ehdr eh;
	size_t len = strlen(path);

	memset(img, 0, sizeof(*img));
	snprintf(img->name, sizeof(img->name), "%s", name);
	snprintf(img->path, sizeof(img->path), "%s", path);
	if (len > 4 && !strcmp(path + len - 4, ".elf") && access(path, F_OK)) {
		snprintf(img->path + len - 4, sizeof(img->path) - len + 4, ".boot");
		if (!access(img->path, F_OK))
			return open_boot_descriptor(img);
		snprintf(img->path, sizeof(img->path), "%s", path);
	}
	img->file = (uint8_t *)read_file(path, &img->file_size);
	if (!img->file)
		return -1;
	if (check_header(img, &eh) || read_segments(img, &eh) || read_params(img, &eh)) {
		image_close(img);
		return -1;
	}
	img->entry = eh.e_entry;
	return 0;
}

void image_close(struct image *img)
{
	free(img->file);
	img->file = NULL;
}

struct kl_param *image_param(struct image *img, const char *name)
{
	for (int i = 0; i < img->nparams; i++)
		if (!strcmp(img->params[i].name, name))
			return &img->params[i];
	return NULL;
}

int image_load(const struct image *img, uint8_t *mem, uint64_t mem_bytes)
{
	Elf64_Ehdr eh;

	read_ehdr(img, &eh);
	if (img->image_end > mem_bytes)
		return err("%s needs %llu KiB of guest memory; the VM has %llu",
			   img->name, (unsigned long long)img->image_end >> 10,
			   (unsigned long long)mem_bytes >> 10);
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		read_phdr(img, &eh, i, &ph);
		if (ph.p_type != PT_LOAD)
			continue;
		memcpy(mem + ph.p_paddr, img->file + ph.p_offset, ph.p_filesz);
		memset(mem + ph.p_paddr + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
	}
	if (img->nparams)
		memcpy(mem + img->params_gpa, img->params,
		       img->nparams * sizeof(struct kl_param));
	return 0;
}

void image_params_string(const struct image *img, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = 0;
	for (int i = 0; i < img->nparams && len < size; i++)
		len += snprintf(buf + len, size - len, "%s%s=%llu", i ? ";" : "",
				img->params[i].name,
				(unsigned long long)img->params[i].value);
	if (img->vcpus > 1 && len < size)
		snprintf(buf + len, size - len, "%svcpus=%d", len ? ";" : "", img->vcpus);
}

/* Names of the workload images in dir, sorted. */
int image_list(const char *dir, char names[][64], int max)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort), count = 0;

	if (n < 0)
		return err_errno("cannot list workloads in %s", dir);
	for (int i = 0; i < n; i++) {
		size_t len = strlen(ents[i]->d_name);

		size_t stem = len > 5 && !strcmp(ents[i]->d_name + len - 5, ".boot") ? len - 5 :
			      len > 4 && !strcmp(ents[i]->d_name + len - 4, ".elf") ? len - 4 : 0;

		if (stem && stem < 64 && count < max) {
			memcpy(names[count], ents[i]->d_name, stem);
			names[count++][stem] = 0;
		}
		free(ents[i]);
	}
	free(ents);
	return count;
}

/* "k=v;k=v" (runs.csv's params column) onto img's parameters. */
int image_set_params(struct image *img, const char *params)
{
	char buf[512], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", params);
	for (char *kv = strtok_r(buf, ";", &save); kv; kv = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(kv, '=');
		struct kl_param *p;
		uint64_t v;

		if (!eq)
			return err("parameters: '%s' is not NAME=VALUE", kv);
		*eq = 0;
		if (!strcmp(kv, "vcpus")) {	/* not the image's: how many CPUs it runs on */
			if (!parse_u64(eq + 1, &v) || v < 1 || v > KC_MAX_VCPUS ||
			    (v > 1 && img->real_mode))
				return err("bad parameter vcpus=%s for %s", eq + 1, img->name);
			img->vcpus = (int)v;
			continue;
		}
		p = image_param(img, kv);
		if (!p || !parse_u64(eq + 1, &v) || v < p->min || v > p->max)
			return err("bad parameter %s=%s for %s", kv, eq + 1, img->name);
		p->value = v;
	}
	return 0;
}
